package esm_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/local/esm"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// createQueue makes a queue for one test with a short visibility timeout, so failures come
// back quickly.
func createQueue(t *testing.T, api *sqs.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(awstest.Name(t)),
		Attributes: map[string]string{"VisibilityTimeout": "1"},
	})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() { _, _ = api.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}) })
	return url
}

func send(t *testing.T, api *sqs.Client, url string, bodies ...string) {
	t.Helper()
	for i := 0; i < len(bodies); i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j, body := range bodies[i:min(i+10, len(bodies))] {
			entries = append(entries, types.SendMessageBatchRequestEntry{
				Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(body),
				MessageAttributes: map[string]types.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("test")}},
			})
		}
		out, err := api.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("send: %v %v", err, out)
		}
	}
}

// recorder is the function under the mapping: it records every record it gets and fails the
// ones its policy says.
type recorder struct {
	mu      sync.Mutex
	batches []int
	seen    map[string]int // body → times received
	records []events.SQSMessage
	fail    func(r events.SQSMessage, seen int) bool
	fnErr   func(seen int) bool
	all     chan struct{}
	want    int
	done    int
}

func newRecorder(want int) *recorder {
	return &recorder{seen: map[string]int{}, all: make(chan struct{}), want: want}
}

func (r *recorder) handle(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, len(e.Records))
	var resp events.SQSEventResponse
	failAll := false
	for _, rec := range e.Records {
		r.seen[rec.Body]++
		r.records = append(r.records, rec)
		if r.fnErr != nil && r.fnErr(r.seen[rec.Body]) {
			failAll = true
		}
	}
	if failAll {
		return resp, fmt.Errorf("batch failed")
	}
	for _, rec := range e.Records {
		if r.fail != nil && r.fail(rec, r.seen[rec.Body]) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			continue
		}
		r.done++
		if r.done == r.want {
			close(r.all)
		}
	}
	return resp, nil
}

func run(t *testing.T, api *sqs.Client, fn esm.Invoker, cfg esm.Config) {
	t.Helper()
	m, err := esm.New(api, fn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func wait(t *testing.T, r *recorder) {
	t.Helper()
	select {
	case <-r.all:
	case <-time.After(60 * time.Second):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("%d of %d records acknowledged; seen %v", r.done, r.want, r.seen)
	}
}

func bodies(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func queueEmpty(t *testing.T, api *sqs.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := api.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		a := out.Attributes
		if a["ApproximateNumberOfMessages"] == "0" && a["ApproximateNumberOfMessagesNotVisible"] == "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty: %v visible, %v in flight", a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestIntegrationDeliversEachRecordOnce(t *testing.T) {
	t.Parallel()
	api := awstest.SQS(t)
	url := createQueue(t, api)
	r := newRecorder(45)
	send(t, api, url, bodies(45, "once")...)
	run(t, api, lambdarun.NewInProcess(r.handle), esm.Config{QueueURL: url, Region: "eu-west-1", ReportBatchItemFailures: true, Concurrency: 3})
	wait(t, r)
	queueEmpty(t, api, url)
	r.mu.Lock()
	defer r.mu.Unlock()
	for body, n := range r.seen {
		if n != 1 {
			t.Errorf("%s received %d times", body, n)
		}
	}
	for _, n := range r.batches {
		if n < 1 || n > 10 {
			t.Errorf("batch of %d records: want 1 to 10", n)
		}
	}
	rec := r.records[0]
	sum := md5.Sum([]byte(rec.Body))
	if rec.EventSource != "aws:sqs" || !strings.HasPrefix(rec.EventSourceARN, "arn:aws:sqs:") || rec.AWSRegion != "eu-west-1" ||
		rec.Md5OfBody != hex.EncodeToString(sum[:]) || rec.ReceiptHandle == "" || rec.MessageId == "" {
		t.Errorf("record %+v", rec)
	}
	if rec.Attributes["ApproximateReceiveCount"] != "1" || rec.Attributes["SentTimestamp"] == "" {
		t.Errorf("attributes %v", rec.Attributes)
	}
	if a := rec.MessageAttributes["kind"]; aws.ToString(a.StringValue) != "test" || a.DataType != "String" || a.StringListValues == nil {
		t.Errorf("message attributes %+v", rec.MessageAttributes)
	}
}

func TestIntegrationRedeliversFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fail   func(events.SQSMessage, int) bool
		fnErr  func(int) bool
		report bool
	}{
		{name: "batch item failures", report: true, fail: func(r events.SQSMessage, seen int) bool { return strings.HasSuffix(r.Body, "7") && seen == 1 }},
		{name: "function error", report: true, fnErr: func(seen int) bool { return seen == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := awstest.SQS(t)
			url := createQueue(t, api)
			r := newRecorder(20)
			r.fail, r.fnErr = tt.fail, tt.fnErr
			send(t, api, url, bodies(20, "retry")...)
			run(t, api, lambdarun.NewInProcess(r.handle), esm.Config{QueueURL: url, ReportBatchItemFailures: tt.report})
			wait(t, r)
			queueEmpty(t, api, url)
			r.mu.Lock()
			defer r.mu.Unlock()
			for body, n := range r.seen {
				failedFirst := (tt.fail != nil && tt.fail(events.SQSMessage{Body: body}, 1)) || (tt.fnErr != nil)
				if failedFirst && n < 2 || !failedFirst && n != 1 {
					t.Errorf("%s received %d times", body, n)
				}
			}
		})
	}
}

// An invalid response names a record not in the batch: Lambda counts the whole batch failed.
func TestIntegrationInvalidResponseFailsBatch(t *testing.T) {
	t.Parallel()
	api := awstest.SQS(t)
	url := createQueue(t, api)
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan struct{})
	fn := lambdarun.NewInProcess(func(e events.SQSEvent) (events.SQSEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		rec := e.Records[0]
		calls[rec.Body]++
		if calls[rec.Body] == 1 {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-in-batch"}}}, nil
		}
		close(done)
		return events.SQSEventResponse{}, nil
	})
	send(t, api, url, "only")
	run(t, api, fn, esm.Config{QueueURL: url, ReportBatchItemFailures: true, Concurrency: 1})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the record did not come back after the invalid response")
	}
	queueEmpty(t, api, url)
}

func TestIntegrationBatchingWindow(t *testing.T) {
	t.Parallel()
	api := awstest.SQS(t)
	url := createQueue(t, api)
	r := newRecorder(30)
	send(t, api, url, bodies(30, "window")...)
	run(t, api, lambdarun.NewInProcess(r.handle), esm.Config{QueueURL: url, BatchSize: 100, Window: 3 * time.Second, Concurrency: 1})
	wait(t, r)
	r.mu.Lock()
	defer r.mu.Unlock()
	if largest := maxOf(r.batches); largest <= 10 {
		t.Errorf("batches %v: want one above 10 records with a batch size of 100 and a window", r.batches)
	}
}

func maxOf(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  esm.Config
	}{
		{name: "no queue", cfg: esm.Config{}},
		{name: "batch too large", cfg: esm.Config{QueueURL: "q", BatchSize: 10_001, Window: time.Second}},
		{name: "batch above 10 without window", cfg: esm.Config{QueueURL: "q", BatchSize: 11}},
		{name: "window too long", cfg: esm.Config{QueueURL: "q", Window: 301 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := esm.New(nil, nil, tt.cfg); err == nil {
				t.Errorf("New(%+v) accepted", tt.cfg)
			}
		})
	}
}
