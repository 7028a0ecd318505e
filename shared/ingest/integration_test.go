package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Against DynamoDB Local and the SQS emulator, with the answer of every 50th create lost after
// DynamoDB applied it (the SDK retries, and the retry fails attribute_not_exists): every message
// sent without a key is still accepted, recorded once and queued once.
func TestIntegrationCreatesWhoseAnswerWasLost(t *testing.T) {
	t.Parallel()
	s := ingesttest.New(t, nil)
	lossy := awstest.NewLossyHTTP(func(op string, n int) bool { return op == "PutItem" && n%50 == 1 })
	s.Enqueuer.Store = store.NewDynamoDB(awstest.LossyDynamoDB(t, lossy), s.Table, time.Hour)

	const n = 300
	ms := messages(n, "")
	rs := s.Enqueuer.Enqueue(context.Background(), ms)
	if lossy.Lost() == 0 {
		t.Fatal("no answer was lost: the test tests nothing")
	}
	for i, r := range rs {
		if r.Err != nil || r.Replayed || r.Status != message.Accepted {
			t.Fatalf("message %d of %d (%d answers lost) = %+v, want accepted", i, n, lossy.Lost(), r)
		}
	}
	queued := ingesttest.Unique(t, s.Drain(t))
	if len(queued) != n || s.Items(t) != n {
		t.Fatalf("%d queued, %d records; want %d of each", len(queued), s.Items(t), n)
	}
	for i, r := range rs {
		rec, err := s.Store.Get(context.Background(), r.ID)
		if err != nil || rec.Status != message.Accepted {
			t.Fatalf("record of message %d = %+v, %v", i, rec, err)
		}
		if q, ok := queued[r.ID]; !ok || q.Envelope.Fingerprint != rec.Fingerprint {
			t.Fatalf("message %d: queued %v with fingerprint %q, record's is %q", i, ok, q.Envelope.Fingerprint, rec.Fingerprint)
		}
	}
	t.Logf("%d messages, %d create answers lost, all accepted and queued once", n, lossy.Lost())
}
