package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/deliver"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// redriveTarget answers 503 until fixed, then 200, and counts the 200s by webhook-id.
type redriveTarget struct {
	fixed atomic.Bool
	mu    sync.Mutex
	ok    map[string]int
}

func (rt *redriveTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if !rt.fixed.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rt.mu.Lock()
	rt.ok[r.Header.Get("webhook-id")]++
	rt.mu.Unlock()
}

func (rt *redriveTarget) delivered(id string) int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.ok[id]
}

// feed receives a batch from the queue at url as the event source mapping would (with the
// receive count) and hands it to the deliver handler; it reports how many records it handled.
func feed(t *testing.T, ctx context.Context, sq *sqs.Client, h *deliver.Handler, url string) int {
	t.Helper()
	out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("receive from %s: %v", url, err)
	}
	if len(out.Messages) == 0 {
		return 0
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		attrs := map[string]string{}
		for k, v := range m.Attributes {
			attrs[k] = v
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Attributes: attrs, EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:" + path.Base(url)})
	}
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	// What the event source mapping does: delete what the handler did not report failed.
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, m := range out.Messages {
		if !failed[aws.ToString(m.MessageId)] {
			if _, err := sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("delete from %s: %v", url, err)
			}
		}
	}
	return len(out.Messages)
}

// visibleMessages is the approximate number of visible messages of the queue at url.
func visibleMessages(t *testing.T, ctx context.Context, sq *sqs.Client, url string) int {
	t.Helper()
	out, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	redriveURL    = regexp.MustCompile(`https?://\S+`)
	redriveNumber = regexp.MustCompile(`\b\d+\b`)
)

// redriveShape is an output line of pushfn redrive with its URLs and counts blanked, to compare
// the command's lines with the README's.
func redriveShape(line string) string {
	return redriveNumber.ReplaceAllString(redriveURL.ReplaceAllString(strings.TrimSpace(line), "URL"), "N")
}

// TestIntegrationRedriveReadme runs the README's `pushfn redrive --local` end to end against the
// emulators: three messages whose target answers 503 go through the deliver handler (as the
// template's deliver function, maxReceiveCount 2) until the emulator has moved their copies to
// the dead-letter queue and their records say failed (dead_lettered); the target is fixed; the
// README's command, with --queue naming this test's queue, moves the three back, printing what
// the README shows; the handler then delivers each once and the records say delivered. A second
// run moves 0 and exits 0, and a queue without a redrive policy is refused.
func TestIntegrationRedriveReadme(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ddb, sq := awstest.DynamoDB(t), awstest.SQS(t)
	db := store.NewDynamoDB(ddb, awstest.Table(t, ddb), awstest.RecordTTL)
	const maxReceiveCount = 2
	queueURL, dlqURL := awstest.Queues(t, sq, maxReceiveCount, 30*time.Second)
	queueName := path.Base(queueURL)

	target := &redriveTarget{ok: map[string]int{}}
	srv := httptest.NewServer(target)
	t.Cleanup(srv.Close)
	cfg := config.Defaults()
	cfg.AllowHTTPTargets, cfg.AllowPrivateTargets = true, true
	cfg.MaxAttempts, cfg.MaxReceiveCount = 5, maxReceiveCount
	cfg.RetryBaseDelay, cfg.RetryMaxDelay = time.Millisecond, time.Second
	client := push.NewClient(push.Options{AllowPrivate: true})
	t.Cleanup(client.CloseIdleConnections)
	h := &deliver.Handler{Store: db, Sender: client, Queue: sq, QueueURL: queueURL, Config: cfg}

	var ids []string
	for range 3 {
		id := message.NewID(time.Now())
		now := time.Now()
		if err := db.Create(ctx, message.Record{ID: id, Fingerprint: "sha256:" + id, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(message.Envelope{ID: id, Fingerprint: "sha256:" + id, Target: message.Target{URL: srv.URL + "/push"}, Payload: json.RawMessage(`{"n":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body))}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Deliver until the emulator has moved every copy to the dead-letter queue: a receive past
	// the maxReceiveCount-th moves it there.
	for visibleMessages(t, ctx, sq, dlqURL) < len(ids) {
		if ctx.Err() != nil {
			t.Fatalf("the copies did not reach the dead-letter queue: %v", ctx.Err())
		}
		feed(t, ctx, sq, h, queueURL)
	}
	for _, id := range ids {
		rec, err := db.Get(ctx, id)
		if err != nil || rec.Status != message.Failed || rec.LastAttempt == nil || !strings.HasPrefix(rec.LastAttempt.Error, message.ReasonDeadLettered) {
			t.Fatalf("%s before the redrive: %+v (%v), want failed (dead_lettered)", id, rec, err)
		}
	}
	target.fixed.Store(true)

	readme := findReadmeCommand(t, "Recovery", "go run ./cmd/pushfn redrive --local")
	var documented []string
	for _, c := range readmeCommands(readReadme(t)) {
		if c.text == readme {
			documented = strings.Split(strings.TrimSpace(c.doc), "\n")
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	redrive := func() []string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "sh", "-c", readme+" --queue "+queueName)
		cmd.Dir, cmd.Env = root, hermeticEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s --queue %s: %v\n%s", readme, queueName, err, out)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	got := redrive()
	t.Logf("%s --queue %s printed:\n%s", readme, queueName, strings.Join(got, "\n"))
	if len(got) != len(documented) {
		t.Fatalf("%s printed:\n%s\nthe README shows:\n%s", readme, strings.Join(got, "\n"), strings.Join(documented, "\n"))
	}
	for i := range got {
		if redriveShape(got[i]) != redriveShape(documented[i]) {
			t.Errorf("line %d: %q, the README shows %q", i+1, got[i], documented[i])
		}
	}
	if want := "moved 3 to " + queueURL; got[len(got)-1] != want {
		t.Errorf("last line %q, want %q", got[len(got)-1], want)
	}
	if !strings.HasPrefix(got[0], "dead-letter queue "+dlqURL+": 3 messages") {
		t.Errorf("first line %q does not name %s with its 3 messages", got[0], dlqURL)
	}

	for _, id := range ids {
		for {
			rec, err := db.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Status == message.Delivered {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s after the redrive: %+v, want delivered", id, rec)
			}
			feed(t, ctx, sq, h, queueURL)
		}
		if n := target.delivered(id); n != 1 {
			t.Errorf("%s: delivered %d times, want once", id, n)
		}
	}
	if n := visibleMessages(t, ctx, sq, dlqURL); n != 0 {
		t.Errorf("%d messages left in the dead-letter queue", n)
	}
	if again := redrive(); again[len(again)-1] != "moved 0 to "+queueURL {
		t.Errorf("a second redrive printed %q, want it to end with moved 0", again)
	}

	// The dead-letter queue has no redrive policy of its own: nothing to redrive from.
	err = redriveWith(ctx, []string{"--local", "--queue", path.Base(dlqURL)}, os.Getenv, io.Discard, io.Discard)
	if !errors.Is(err, queue.ErrNoRedrivePolicy) {
		t.Errorf("redrive of a queue without a redrive policy: %v, want ErrNoRedrivePolicy", err)
	}
}

// TestRedriveUnreachable: with nothing listening at the SQS endpoint the command says so and
// what to start.
func TestRedriveUnreachable(t *testing.T) {
	t.Parallel()
	ln := httptest.NewServer(http.NotFoundHandler())
	closed := ln.URL
	ln.Close()
	getenv := func(k string) string {
		if k == "AWS_ENDPOINT_URL_SQS" {
			return closed
		}
		return ""
	}
	err := redriveWith(context.Background(), []string{"--local"}, getenv, io.Discard, io.Discard)
	if !errors.Is(err, errNoSQS) || !strings.Contains(err.Error(), closed) || !strings.Contains(err.Error(), "pushfn emulators up") {
		t.Fatalf("redrive with no SQS at %s: %v", closed, err)
	}
}
