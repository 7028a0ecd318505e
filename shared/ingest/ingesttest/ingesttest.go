// Package ingesttest helps test the front doors over the ingest path: a settable clock and a fake
// producer for unit tests, and for integration tests a fresh table and queue on the local
// emulators, an Enqueuer writing to them, and helpers that read back what landed.
//
// Tests only: no function links it.
package ingesttest

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// CountingSQS counts the SendMessageBatch requests made through it.
type CountingSQS struct {
	API   queue.API
	calls atomic.Int64
}

var _ queue.API = (*CountingSQS)(nil)

// SendMessageBatch counts the call and passes it on.
func (c *CountingSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	c.calls.Add(1)
	return c.API.SendMessageBatch(ctx, in, optFns...)
}

// Calls returns how many SendMessageBatch requests were made.
func (c *CountingSQS) Calls() int { return int(c.calls.Load()) }

// Stack is a table and a queue of their own on the emulators, and an Enqueuer over them.
type Stack struct {
	SQS      *sqs.Client
	DynamoDB *dynamodb.Client
	QueueURL string
	Table    string
	Store    *store.DynamoDB
	Sends    *CountingSQS
	Enqueuer *ingest.Enqueuer
}

// New creates the stack for t (skipped unless integration tests are on) and removes it when t
// ends. now is the Enqueuer's clock (nil for time.Now).
func New(t *testing.T, now func() time.Time) *Stack {
	t.Helper()
	s := &Stack{SQS: awstest.SQS(t), DynamoDB: awstest.DynamoDB(t)}
	s.Table = awstest.Table(t, s.DynamoDB)
	s.QueueURL, _ = awstest.Queues(t, s.SQS, 5, 5*time.Minute)
	s.Store = store.NewDynamoDB(s.DynamoDB, s.Table, awstest.RecordTTL)
	s.Sends = &CountingSQS{API: s.SQS}
	s.Enqueuer = &ingest.Enqueuer{Store: s.Store, Producer: queue.NewProducer(s.Sends, s.QueueURL), Now: now, Logger: slog.New(slog.DiscardHandler)}
	return s
}

// Received is one message read back from the queue.
type Received struct {
	Envelope  message.Envelope
	Body      string
	MessageID string
}

// Drain receives every message on the queue, deletes it and returns it. It stops once a receive
// finds nothing and the queue holds no message, visible or in flight, or after a minute. Each receive
// hides what it takes for a few seconds only, so messages whose receive answer was lost on the
// way (seen with a busy SQS emulator) come back and are taken by a later receive.
func (s *Stack) Drain(t *testing.T) []Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []Received
	for ctx.Err() == nil {
		resp, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(s.QueueURL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
			VisibilityTimeout:   3,
		})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(resp.Messages) == 0 {
			if s.empty(t, ctx) {
				return out
			}
			continue
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range resp.Messages {
			r := Received{Body: aws.ToString(m.Body), MessageID: aws.ToString(m.MessageId)}
			if err := json.Unmarshal([]byte(r.Body), &r.Envelope); err != nil {
				t.Fatalf("queued body %q is not an envelope: %v", r.Body, err)
			}
			out = append(out, r)
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if _, err := s.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.QueueURL), Entries: del}); err != nil {
			t.Fatalf("delete received messages: %v", err)
		}
	}
	t.Logf("Drain: the queue still held messages after a minute; %d received", len(out))
	return out
}

// Items returns how many records the table holds.
func (s *Stack) Items(t *testing.T) int {
	t.Helper()
	out, err := s.DynamoDB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(s.Table), Select: dbtypes.SelectCount, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("scan %s: %v", s.Table, err)
	}
	if out.LastEvaluatedKey != nil {
		t.Fatalf("scan %s: more than one page; count with pagination", s.Table)
	}
	return int(out.Count)
}

// empty reports whether the queue holds no message, visible or in flight (delayed ones are not
// there yet).
func (s *Stack) empty(t *testing.T, ctx context.Context) bool {
	t.Helper()
	names := []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	}
	a, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.QueueURL), AttributeNames: names})
	if err != nil {
		t.Fatalf("queue attributes: %v", err)
	}
	for _, n := range names {
		if a.Attributes[string(n)] != "0" {
			return false
		}
	}
	return true
}

// Unique checks that no message id was queued twice, and returns the ids.
func Unique(t *testing.T, rs []Received) map[string]Received {
	t.Helper()
	ids := make(map[string]Received, len(rs))
	for _, r := range rs {
		if _, dup := ids[r.Envelope.ID]; dup {
			t.Fatalf("message %s queued twice", r.Envelope.ID)
		}
		ids[r.Envelope.ID] = r
	}
	return ids
}
