package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Against DynamoDB Local, with the answer of the first call of an operation lost after DynamoDB
// applied it: the SDK's retry meets the condition the write made true, and the store must read
// that as done.
func TestIntegrationLostAnswers(t *testing.T) {
	t.Parallel()
	table := awstest.Name(t)
	setupClient := awstest.DynamoDB(t)
	dropTable(t, setupClient, table)
	if err := store.CreateTable(context.Background(), setupClient, table); err != nil {
		t.Fatal(err)
	}
	plain := store.NewDynamoDB(setupClient, table, time.Hour)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)

	// lossy returns a store whose first call of op has its answer lost.
	lossy := func(op string) (*store.DynamoDB, *awstest.LossyHTTP) {
		l := awstest.NewLossyHTTP(t, awstest.LoseCalls(op, 1))
		return store.NewDynamoDB(awstest.LossyDynamoDB(t, l), table, time.Hour), l
	}
	newRecord := func(token string) message.Record {
		return message.Record{ID: message.NewID(now), Fingerprint: "sha256:0f", CreatedAt: now, UpdatedAt: now, CreateToken: token}
	}

	t.Run("Create", func(t *testing.T) {
		s, l := lossy("PutItem")
		rec := newRecord("create-lost-1")
		if err := s.Create(ctx, rec); err != nil {
			t.Fatalf("Create whose answer was lost: %v, want nil", err)
		}
		if l.Lost() != 1 || l.Calls("PutItem") != 2 {
			t.Fatalf("lost %d answers in %d calls, want 1 in 2 (the test did not lose the answer)", l.Lost(), l.Calls("PutItem"))
		}
		if got, err := plain.Get(ctx, rec.ID); err != nil || got.CreateToken != rec.CreateToken || got.Status != message.Accepted {
			t.Fatalf("record = %+v, %v", got, err)
		}
	})
	t.Run("CreateWithoutToken", func(t *testing.T) {
		// What the token fixes: without one, the retry reads as somebody else's record.
		s, _ := lossy("PutItem")
		if err := s.Create(ctx, newRecord("")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("Create without a token whose answer was lost: %v, want ErrExists", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s, l := lossy("DeleteItem")
		rec := newRecord("create-lost-2")
		if err := plain.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, rec.ID, rec.CreateToken); err != nil {
			t.Fatalf("Delete whose answer was lost: %v, want nil", err)
		}
		if l.Lost() != 1 {
			t.Fatalf("lost %d answers, want 1", l.Lost())
		}
		if _, err := plain.Get(ctx, rec.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
		}
	})
	t.Run("MarkReplayed", func(t *testing.T) {
		s, l := lossy("UpdateItem")
		rec := newRecord("create-lost-3")
		if err := plain.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		got, err := s.MarkReplayed(ctx, rec.ID, rec.CreateToken, now)
		if err != nil || !got.Replayed || l.Lost() != 1 {
			t.Fatalf("MarkReplayed whose answer was lost = %+v, %v (lost %d), want marked", got, err, l.Lost())
		}
	})
}
