// Package esm feeds a function from an SQS queue as Lambda's SQS event source mapping does: it
// long-polls the queue, gathers batches within a batching window, invokes the function with an
// events.SQSEvent, deletes what the function acknowledged and leaves failures for SQS to redeliver.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// API is the part of the SQS client the mapping calls.
type API interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ API = (*sqs.Client)(nil)

// Invoker runs the function: a lambdarun.Pool, or a lambdarun.InProcess handler in tests.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, *lambdarun.FunctionError, error)
}

var _ Invoker = (*lambdarun.Pool)(nil)

// Config is the event source mapping's settings, as a template's SQS event declares them.
type Config struct {
	QueueURL                string
	QueueARN                string        // looked up from the queue when empty
	Region                  string        // the records' awsRegion; us-east-1 when empty
	BatchSize               int           // 1 to 10,000; 10 when zero
	Window                  time.Duration // MaximumBatchingWindowInSeconds: 0 to 5 minutes
	Concurrency             int           // invocations at once (MaximumConcurrency); 2 when zero
	ReportBatchItemFailures bool          // FunctionResponseTypes: [ReportBatchItemFailures]
	Logger                  *slog.Logger  // failures, and one debug line per batch; discarded when nil
}

// Batch is the outcome of one invocation, for Mapping.OnBatch.
type Batch struct {
	Records  int
	Deleted  int
	Failed   []string // message ids left for SQS to redeliver
	FnErr    *lambdarun.FunctionError
	Err      error // the invoke could not run
	Duration time.Duration
}

// Mapping polls one queue for one function.
type Mapping struct {
	api API
	fn  Invoker
	cfg Config
	log *slog.Logger

	// OnBatch, when set before Run, is called after each invocation.
	OnBatch func(Batch)
}

// Lambda's limits on a batch.
const (
	maxPayload = lambdarun.MaxPayload
	longPoll   = 20 // seconds, SQS's maximum
)

// New returns a Mapping of the queue cfg names to fn.
func New(api API, fn Invoker, cfg Config) (*Mapping, error) {
	switch {
	case cfg.QueueURL == "":
		return nil, errors.New("esm: no queue URL")
	case cfg.BatchSize < 0 || cfg.BatchSize > 10_000:
		return nil, fmt.Errorf("esm: batch size %d is not from 1 to 10,000", cfg.BatchSize)
	case cfg.BatchSize > 10 && cfg.Window <= 0:
		return nil, fmt.Errorf("esm: batch size %d above 10 needs a batching window, as Lambda requires", cfg.BatchSize)
	case cfg.Window < 0 || cfg.Window > 5*time.Minute:
		return nil, fmt.Errorf("esm: batching window %s is not from 0 to 5 minutes", cfg.Window)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 10
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mapping{api: api, fn: fn, cfg: cfg, log: log}, nil
}

// Run polls until ctx is done, with Config.Concurrency pollers each invoking the function with
// the batches it gathers. It returns nil after a clean stop: invocations in flight finish, and
// records gathered but not yet handed to the function are made visible again.
func (m *Mapping) Run(ctx context.Context) error {
	if m.cfg.QueueARN == "" {
		out, err := m.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(m.cfg.QueueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
		})
		if err != nil {
			return fmt.Errorf("esm: queue ARN of %s: %w", m.cfg.QueueURL, err)
		}
		m.cfg.QueueARN = out.Attributes[string(types.QueueAttributeNameQueueArn)]
	}
	var wg sync.WaitGroup
	for range m.cfg.Concurrency {
		wg.Go(func() { m.poll(ctx) })
	}
	wg.Wait()
	return nil
}

func (m *Mapping) poll(ctx context.Context) {
	var carry []types.Message
	for ctx.Err() == nil {
		batch, rest := m.gather(ctx, carry)
		carry = rest
		if ctx.Err() != nil {
			m.release(append(batch, carry...))
			return
		}
		if len(batch) > 0 {
			m.invoke(context.WithoutCancel(ctx), batch)
		}
	}
	m.release(carry)
}

// gather receives messages until the batch is full, the window since the first one has passed,
// or the next message would take the event past Lambda's payload limit (it is carried over).
func (m *Mapping) gather(ctx context.Context, carry []types.Message) (batch, rest []types.Message) {
	size := 0
	var windowEnd time.Time
	for _, msg := range carry {
		if len(batch) == m.cfg.BatchSize || size+recordSize(msg) > maxPayload {
			rest = append(rest, msg)
			continue
		}
		batch = append(batch, msg)
		size += recordSize(msg)
	}
	if len(rest) > 0 {
		return batch, rest
	}
	if len(batch) > 0 {
		windowEnd = time.Now().Add(m.cfg.Window)
	}
	backoff := 100 * time.Millisecond
	for len(batch) < m.cfg.BatchSize && ctx.Err() == nil {
		wait := int32(longPoll)
		if len(batch) > 0 {
			left := time.Until(windowEnd)
			if left <= 0 {
				break
			}
			wait = int32(min((left+time.Second-1)/time.Second, longPoll))
		}
		out, err := m.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(m.cfg.QueueURL),
			MaxNumberOfMessages:         int32(min(10, m.cfg.BatchSize-len(batch))),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("receive failed", "queue_url", m.cfg.QueueURL, "error", err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, 5*time.Second)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		for _, msg := range out.Messages {
			if size+recordSize(msg) > maxPayload && len(batch) > 0 {
				rest = append(rest, msg)
				continue
			}
			batch = append(batch, msg)
			size += recordSize(msg)
		}
		if len(rest) > 0 {
			break
		}
		if len(batch) > 0 && windowEnd.IsZero() {
			windowEnd = time.Now().Add(m.cfg.Window)
		}
	}
	return batch, rest
}

// recordSize approximates a record's share of the event: its body and attributes with the
// JSON around them.
func recordSize(msg types.Message) int {
	n := len(aws.ToString(msg.Body)) + len(aws.ToString(msg.ReceiptHandle)) + 512
	for k, v := range msg.MessageAttributes {
		n += len(k) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)*4/3 + 64
	}
	return n
}

// invoke runs the function on one batch and deletes what it acknowledged.
func (m *Mapping) invoke(ctx context.Context, msgs []types.Message) {
	start := time.Now()
	event := m.Event(msgs)
	payload, err := json.Marshal(event)
	if err != nil {
		m.log.Error("encode event", "error", err)
		return
	}
	out, fnErr, err := m.fn.Invoke(ctx, payload)
	b := Batch{Records: len(msgs), FnErr: fnErr, Err: err}
	var ack []types.Message
	switch {
	case err != nil:
		m.log.Error("invoke failed: the batch returns to the queue", "records", len(msgs), "error", err)
	case fnErr != nil:
		m.log.Error("function error: the batch returns to the queue", "records", len(msgs), "error_type", fnErr.Type, "error", fnErr.Message)
	default:
		var bad error
		ack, bad = m.acknowledged(msgs, out)
		if bad != nil {
			m.log.Error("invalid batch response: the batch returns to the queue", "records", len(msgs), "error", bad)
		}
	}
	b.Deleted = m.delete(ctx, ack)
	acked := make(map[string]bool, len(ack))
	for _, msg := range ack {
		acked[aws.ToString(msg.MessageId)] = true
	}
	for _, msg := range msgs {
		if id := aws.ToString(msg.MessageId); !acked[id] {
			b.Failed = append(b.Failed, id)
		}
	}
	b.Duration = time.Since(start)
	m.log.Debug("batch", "records", b.Records, "deleted", b.Deleted, "failed", len(b.Failed), "duration_ms", b.Duration.Milliseconds())
	if m.OnBatch != nil {
		m.OnBatch(b)
	}
}

// acknowledged returns the records the function's response lets the mapping delete, by Lambda's
// rules: with ReportBatchItemFailures, all but the listed failures, and none when the response
// is invalid or names a record not in the batch.
func (m *Mapping) acknowledged(msgs []types.Message, out []byte) ([]types.Message, error) {
	if !m.cfg.ReportBatchItemFailures {
		return msgs, nil
	}
	var resp *struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("response is not an SQSEventResponse: %w", err)
	}
	if resp == nil || len(resp.BatchItemFailures) == 0 {
		return msgs, nil
	}
	inBatch := make(map[string]bool, len(msgs))
	for _, msg := range msgs {
		inBatch[aws.ToString(msg.MessageId)] = true
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		id := aws.ToString(f.ItemIdentifier)
		if !inBatch[id] {
			return nil, fmt.Errorf("itemIdentifier %q is not a message of the batch", id)
		}
		failed[id] = true
	}
	var ack []types.Message
	for _, msg := range msgs {
		if !failed[aws.ToString(msg.MessageId)] {
			ack = append(ack, msg)
		}
	}
	return ack, nil
}

// delete removes msgs from the queue, ten at a time, and returns how many went.
func (m *Mapping) delete(ctx context.Context, msgs []types.Message) int {
	deleted := 0
	for chunk := range slices.Chunk(msgs, 10) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, msg := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: msg.ReceiptHandle}
		}
		out, err := m.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(m.cfg.QueueURL), Entries: entries})
		if err != nil {
			m.log.Error("delete failed: the records will be redelivered", "records", len(chunk), "error", err)
			continue
		}
		deleted += len(out.Successful)
		for _, f := range out.Failed {
			m.log.Error("delete failed: the record will be redelivered", "code", aws.ToString(f.Code), "error", aws.ToString(f.Message))
		}
	}
	return deleted
}

// release makes records gathered but never invoked visible again, so a stop loses no time.
func (m *Mapping) release(msgs []types.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for chunk := range slices.Chunk(msgs, 10) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, msg := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: msg.ReceiptHandle}
		}
		if _, err := m.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(m.cfg.QueueURL), Entries: entries}); err != nil {
			m.log.Warn("release failed: the records wait out their visibility timeout", "records", len(chunk), "error", err)
		}
	}
}

// Event returns the events.SQSEvent Lambda builds for msgs.
func (m *Mapping) Event(msgs []types.Message) events.SQSEvent {
	e := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, msg := range msgs {
		attrs := make(map[string]string, len(msg.Attributes))
		for k, v := range msg.Attributes {
			attrs[k] = v
		}
		mattrs := make(map[string]events.SQSMessageAttribute, len(msg.MessageAttributes))
		for k, v := range msg.MessageAttributes {
			mattrs[k] = events.SQSMessageAttribute{
				StringValue:      v.StringValue,
				BinaryValue:      v.BinaryValue,
				StringListValues: orEmpty(v.StringListValues),
				BinaryListValues: orEmpty(v.BinaryListValues),
				DataType:         aws.ToString(v.DataType),
			}
		}
		e.Records[i] = events.SQSMessage{
			MessageId:              aws.ToString(msg.MessageId),
			ReceiptHandle:          aws.ToString(msg.ReceiptHandle),
			Body:                   aws.ToString(msg.Body),
			Md5OfBody:              aws.ToString(msg.MD5OfBody),
			Md5OfMessageAttributes: aws.ToString(msg.MD5OfMessageAttributes),
			Attributes:             attrs,
			MessageAttributes:      mattrs,
			EventSource:            "aws:sqs",
			EventSourceARN:         m.cfg.QueueARN,
			AWSRegion:              m.cfg.Region,
		}
	}
	return e
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
