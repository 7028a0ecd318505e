package status

import (
	"context"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Against DynamoDB Local, records written by the store are counted by state, page by page, and
// a count stopped at MaxItems says it is partial.
func TestIntegrationTableCount(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	name := awstest.Table(t, client)
	db := store.NewDynamoDB(client, name, 0)
	ctx := context.Background()
	at := time.Now()
	want := map[message.Status]int{message.Accepted: 3, message.Delivered: 5, message.Failed: 2, message.Retrying: 1}
	n := 0
	for st, count := range want {
		for range count {
			n++
			id := message.NewID(at.Add(time.Duration(n) * time.Millisecond))
			if err := db.Create(ctx, message.Record{ID: id, Fingerprint: "f", CreatedAt: at, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
			if st == message.Accepted {
				continue
			}
			if _, err := db.Finish(ctx, id, store.Outcome{Now: at, Status: st, Fingerprint: "f"}); err != nil {
				t.Fatalf("finish %s %s: %v", id, st, err)
			}
		}
	}
	got, err := (&Table{API: client, Name: name}).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if got.Messages[string(st)] != want[st] {
			t.Errorf("%s: %d, want %d (all: %v)", st, got.Messages[string(st)], want[st], got.Messages)
		}
	}
	if got.Scanned != n || got.Partial {
		t.Errorf("scanned %d, partial %v; want %d, false", got.Scanned, got.Partial, n)
	}
	// Pages of 1000: a bound below a page still reads the page it is in, and says so.
	partial, err := (&Table{API: client, Name: name, MaxItems: 1}).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if partial.Scanned != n || partial.Partial {
		t.Errorf("with MaxItems 1, one page of %d: scanned %d, partial %v; want %d, false (the table ends on the page)", n, partial.Scanned, partial.Partial, n)
	}
}
