package deliver

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// TestIntegrationEmulators runs the handler on records received from the SQS emulator, with its
// records in DynamoDB Local: results land in the table, acknowledged records stay deleted by
// nobody but the caller, and a retried record becomes visible again after its backoff.
func TestIntegrationEmulators(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ddb, sq := awstest.DynamoDB(t), awstest.SQS(t)
	table := awstest.Table(t, ddb)
	queueURL, _ := awstest.Queues(t, sq, 20, 30*time.Second)

	b := newBundle(t, func(h *Handler) {
		h.Config.RetryBaseDelay = time.Second
		h.Queue, h.QueueURL = sq, queueURL
	})
	db := store.NewDynamoDB(ddb, table, awstest.RecordTTL)
	b.h.Store = db

	ok := newTarget(t, 200, nil, 0)
	busy := newTarget(t, 500, nil, 0)
	gone := newTarget(t, 404, nil, 0)
	limited := newTarget(t, 429, http.Header{"Retry-After": {"600"}}, 0)
	targets := map[string]*target{}
	send := func(tg *target) string {
		id := message.NewID(time.Now())
		if err := db.Create(ctx, message.Record{ID: id, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(message.Envelope{ID: id, Target: message.Target{URL: tg.URL}, Payload: json.RawMessage(`{"n":1}`)})
		if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body))}); err != nil {
			t.Fatal(err)
		}
		targets[id] = tg
		return id
	}
	okID, busyID, goneID, limitedID := send(ok), send(busy), send(gone), send(limited)
	if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String("not an envelope")}); err != nil {
		t.Fatal(err)
	}

	ev := receive(t, sq, queueURL, 5, 10*time.Second)
	resp, err := b.h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]message.Status{okID: message.Delivered, busyID: message.Retrying, goneID: message.Failed, limitedID: message.Retrying}
	for id, status := range want {
		rec, err := db.Get(ctx, id)
		if err != nil || rec.Status != status || rec.Attempts != 1 || rec.LastAttempt == nil {
			t.Errorf("%s: %+v (%v), want %s after 1 attempt", id, rec, err, status)
		}
		if n := targets[id].count(id); n != 1 {
			t.Errorf("%s: %d pushes, want 1", id, n)
		}
	}
	var wantFailed []string
	for _, m := range ev.Records {
		if id := envelopeID(m.Body); id == busyID || id == limitedID {
			wantFailed = append(wantFailed, m.MessageId)
		}
	}
	slices.Sort(wantFailed)
	if got := failures(resp); !slices.Equal(got, wantFailed) {
		t.Fatalf("batch item failures %v, want %v", got, wantFailed)
	}

	// The same batch again, as SQS may deliver it: nothing final is pushed again.
	if _, err := b.h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if ok.count(okID) != 1 || gone.count(goneID) != 1 {
		t.Errorf("final messages pushed again: %d, %d", ok.count(okID), gone.count(goneID))
	}

	// The 500's record comes back after its 1 s backoff; the 429's waits for its Retry-After.
	back := receive(t, sq, queueURL, 1, 15*time.Second)
	if id := envelopeID(back.Records[0].Body); id != busyID {
		t.Fatalf("record %s came back, want %s", id, busyID)
	}
}

func envelopeID(body string) string {
	var env message.Envelope
	_ = json.Unmarshal([]byte(body), &env)
	return env.ID
}

// receive long-polls the queue until it has want records, as the event source mapping would
// batch them.
func receive(t *testing.T, sq *sqs.Client, url string, want int, within time.Duration) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	deadline := time.Now().Add(within)
	for len(ev.Records) < want && time.Now().Before(deadline) {
		out, err := sq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body)})
		}
	}
	if len(ev.Records) != want {
		t.Fatalf("received %d records, want %d", len(ev.Records), want)
	}
	return ev
}

// TestIntegrationLostAnswer runs the handler against DynamoDB Local through a client that loses
// the answer of one write after DynamoDB applied it, so the SDK's retry fails its condition on
// that write's own result. A lost result write of a retryable failure must still hand the
// record back with its backoff (not acknowledge it and leave it retrying with no copy left);
// a lost claim must still send, counting one attempt.
func TestIntegrationLostAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ddb := awstest.DynamoDB(t)
	table := awstest.Table(t, ddb)
	db := store.NewDynamoDB(ddb, table, awstest.RecordTTL)
	for _, tc := range []struct {
		name       string
		status     int
		lose       int // the UpdateItem call whose answer is lost: 1 the claim, 2 the result write
		want       message.Status
		handedBack bool
	}{
		{name: "result of a 503", status: 503, lose: 2, want: message.Retrying, handedBack: true},
		{name: "result of a 200", status: 200, lose: 2, want: message.Delivered},
		{name: "claim", status: 200, lose: 1, want: message.Delivered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, nil)
			lost := awstest.NewLossyHTTP(t, awstest.LoseCalls("UpdateItem", tc.lose))
			b.h.Store = store.NewDynamoDB(awstest.LossyDynamoDB(t, lost), table, awstest.RecordTTL)
			tg := newTarget(t, tc.status, nil, 0)
			id := message.NewID(time.Now())
			if err := db.Create(ctx, message.Record{ID: id, Fingerprint: fingerprint(id), CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			rec := b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), Target: message.Target{URL: tg.URL}, Payload: json.RawMessage(`{"n":1}`)})
			resp := handle(t, b, rec)
			if n := lost.Lost(); n != 1 {
				t.Fatalf("%d answers lost, want 1", n)
			}
			got, err := db.Get(ctx, id)
			if err != nil || got.Status != tc.want || got.Attempts != 1 {
				t.Errorf("record %s after %d attempts (%v), want %s after 1", got.Status, got.Attempts, err, tc.want)
			}
			if n := tg.count(id); n != 1 {
				t.Errorf("%d POSTs, want 1", n)
			}
			if handedBack := len(resp.BatchItemFailures) == 1; handedBack != tc.handedBack {
				t.Errorf("handed back %v, want %v", handedBack, tc.handedBack)
			}
			if v, ok := b.queue.changes()[rec.ReceiptHandle]; tc.handedBack && (!ok || v != 10) {
				t.Errorf("visibility %d (changed %v), want the first retry's 10 s", v, ok)
			}
		})
	}
}
