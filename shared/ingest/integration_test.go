package ingest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// Against DynamoDB Local and the SQS emulator, with the answer of every 50th create lost after
// DynamoDB applied it (the SDK retries, and the retry fails attribute_not_exists): every message
// sent without a key is still accepted, recorded once and queued once.
func TestIntegrationCreatesWhoseAnswerWasLost(t *testing.T) {
	t.Parallel()
	s := ingesttest.New(t, nil)
	lossy := awstest.NewLossyHTTP(t, func(op string, n int) bool { return op == "PutItem" && n%50 == 1 })
	s.Enqueuer.Store = store.NewDynamoDB(awstest.LossyDynamoDB(t, lossy), s.Table, awstest.RecordTTL)

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

// Against the SQS emulator, with every SendMessageBatch answer lost while the first request
// runs: SQS stores the copies (one per SDK attempt), the producer reports failure, the record is
// undone and the answer is 503. A retry with the same key and another body is accepted; every
// stale copy carries the old fingerprint, so only the new message's copies match the record.
func TestIntegrationAmbiguousSendThenOtherBody(t *testing.T) {
	t.Parallel()
	s := ingesttest.New(t, nil)
	var lose atomic.Bool
	lose.Store(true)
	lossy := awstest.NewLossyHTTP(t, func(op string, _ int) bool { return op == "SendMessageBatch" && lose.Load() })
	client := sqs.NewFromConfig(awstest.Config(t), func(o *sqs.Options) { o.HTTPClient = lossy })
	s.Enqueuer.Producer = queue.NewProducer(client, s.QueueURL)

	old := newMessage("order-it-1", `{"n":"old"}`)
	first := s.Enqueuer.Enqueue(context.Background(), []message.Message{old})[0]
	if !errors.Is(first.Err, ingest.ErrUnavailable) || lossy.Lost() == 0 {
		t.Fatalf("first = %+v after %d lost answers, want ErrUnavailable", first, lossy.Lost())
	}
	if _, err := s.Store.Get(context.Background(), first.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record after the 503: %v, want ErrNotFound", err)
	}
	lose.Store(false)
	fresh := newMessage("order-it-1", `{"n":"new"}`)
	if r := s.Enqueuer.Enqueue(context.Background(), []message.Message{fresh})[0]; r.Err != nil || r.Replayed {
		t.Fatalf("retry with another body = %+v, want accepted", r)
	}
	rec, err := s.Store.Get(context.Background(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	stale, bound := 0, 0
	for _, r := range s.Drain(t) {
		switch {
		case r.Envelope.Fingerprint == rec.Fingerprint && string(r.Envelope.Payload) == `{"n":"new"}`:
			bound++
		case r.Envelope.Fingerprint != rec.Fingerprint && string(r.Envelope.Payload) == `{"n":"old"}`:
			stale++
		default:
			t.Fatalf("copy %s does not carry its own message's fingerprint", r.Body)
		}
	}
	if stale != lossy.Lost() || bound != 1 {
		t.Fatalf("%d stale copies (%d answers lost) and %d bound to the record, want 1 bound", stale, lossy.Lost(), bound)
	}
	t.Logf("%d stale copies stored by the lost sends, each bound to the old message", stale)
}
