package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/pushfn/pushfn/shared/backoff"
)

// API is the part of the SQS client a Producer calls; *sqs.Client has it.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ API = (*sqs.Client)(nil)

// SQS limits a batch is built within.
const (
	// MaxBatchEntries is the most entries one SendMessageBatch request may hold.
	MaxBatchEntries = 10
	// DefaultMaxBatchBytes is the most body bytes one request may hold: 1 MiB, the limit of SQS
	// per message and per batch since August 2025, and what fauxqs 1.9.2 enforces (the sum of the
	// bodies, else BatchRequestTooLong).
	DefaultMaxBatchBytes = 1 << 20
	// MaxDelaySeconds is the longest delay SQS accepts.
	MaxDelaySeconds = 900
)

// Defaults of a Producer's tuning fields.
const (
	DefaultConcurrency = 4
	DefaultMaxTries    = 4
	DefaultBaseDelay   = 50 * time.Millisecond
	DefaultMaxDelay    = time.Second
)

// Errors of Send's outcomes, for errors.Is. Every non-nil outcome wraps exactly one of them.
var (
	// ErrPermanent: SQS refused the entry itself (a sender fault, or it is too large or
	// malformed); sending it again cannot succeed.
	ErrPermanent = errors.New("message refused by the queue")
	// ErrRetryable: the entry was not queued for a reason that may pass (the service failed it,
	// the request failed after the SDK's own retries, or the context ended); it may be sent again.
	ErrRetryable = errors.New("message not queued")
)

// Error is why one entry was not queued. It wraps ErrPermanent or ErrRetryable, and the error of
// the request when the whole request failed.
type Error struct {
	Code      string // SQS's code for the entry (e.g. InvalidMessageContents); empty for a failed request
	Message   string
	Permanent bool
	Tries     int   // how many requests carried the entry
	Err       error // the request's error, when the whole request failed
}

func (e *Error) Error() string {
	s := "send to queue"
	switch {
	case e.Err != nil:
		s += ": " + e.Err.Error()
	case e.Code != "":
		s += ": " + e.Code + ": " + e.Message
	default:
		s += ": " + e.Message
	}
	if e.Tries > 0 {
		s += " (" + strconv.Itoa(e.Tries) + " tries)"
	}
	return s
}

// Unwrap returns ErrPermanent or ErrRetryable, and the request's error if any.
func (e *Error) Unwrap() []error {
	kind := ErrRetryable
	if e.Permanent {
		kind = ErrPermanent
	}
	if e.Err != nil {
		return []error{kind, e.Err}
	}
	return []error{kind}
}

// Producer sends entries to one SQS queue in batches. Set its fields before the first Send; it
// is then safe for concurrent use.
type Producer struct {
	// MaxBatchBytes bounds the body bytes of one request (DefaultMaxBatchBytes). An entry larger
	// than this alone is refused without a request.
	MaxBatchBytes int
	// Concurrency bounds the requests in flight during one Send (DefaultConcurrency).
	Concurrency int
	// MaxTries bounds the requests that carry one entry, the first included (DefaultMaxTries).
	MaxTries int
	// BaseDelay and MaxDelay shape the wait before re-sending entries SQS failed: full jitter
	// over an exponential doubling from BaseDelay, capped at MaxDelay.
	BaseDelay, MaxDelay time.Duration

	api      API
	queueURL string
}

// NewProducer returns a Producer sending to queueURL with the default limits.
func NewProducer(api API, queueURL string) *Producer {
	return &Producer{
		MaxBatchBytes: DefaultMaxBatchBytes,
		Concurrency:   DefaultConcurrency,
		MaxTries:      DefaultMaxTries,
		BaseDelay:     DefaultBaseDelay,
		MaxDelay:      DefaultMaxDelay,
		api:           api,
		queueURL:      queueURL,
	}
}

// Send queues entries and returns one outcome per entry, in order: nil when the entry is queued,
// else an *Error. Entries SQS fails for a reason of its own are sent again with backoff; one
// entry's failure never holds up the others.
func (p *Producer) Send(ctx context.Context, entries []Entry) []error {
	errs := make([]error, len(entries))
	// A plain Group, not WithContext: each chunk records its own outcome in errs and returns
	// nil, so one chunk's failure never cancels the others.
	var g errgroup.Group
	g.SetLimit(max(p.Concurrency, 1))
	for _, chunk := range p.chunks(entries, errs) {
		g.Go(func() error {
			p.sendChunk(ctx, entries, chunk, errs)
			return nil
		})
	}
	_ = g.Wait() // every function returns nil
	return errs
}

// chunks groups the indexes of the entries that can be sent into requests within the count and
// byte limits, keeping their order, and records a permanent error for each entry that cannot.
func (p *Producer) chunks(entries []Entry, errs []error) [][]int {
	limit := p.MaxBatchBytes
	if limit <= 0 {
		limit = DefaultMaxBatchBytes
	}
	var chunks [][]int
	var cur []int
	size := 0
	for i, e := range entries {
		switch {
		case e.Body == "":
			errs[i] = &Error{Permanent: true, Message: "empty message body"}
			continue
		case len(e.Body) > limit:
			errs[i] = &Error{Permanent: true, Message: fmt.Sprintf("message body of %d bytes exceeds the %d-byte limit", len(e.Body), limit)}
			continue
		case e.DelaySeconds < 0 || e.DelaySeconds > MaxDelaySeconds:
			errs[i] = &Error{Permanent: true, Message: fmt.Sprintf("delay of %d seconds is outside 0 to %d", e.DelaySeconds, MaxDelaySeconds)}
			continue
		}
		if len(cur) == MaxBatchEntries || size+len(e.Body) > limit {
			chunks = append(chunks, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += len(e.Body)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// sendChunk sends the entries at indexes chunk, re-sending those SQS failed for its own reasons,
// and records each one's outcome in errs.
func (p *Producer) sendChunk(ctx context.Context, entries []Entry, chunk []int, errs []error) {
	maxTries := max(p.MaxTries, 1)
	pending := chunk
	try := 1
	defer func() {
		// A panic (in the API, say) fails only the entries not yet queued.
		if r := recover(); r != nil {
			for _, i := range pending {
				errs[i] = &Error{Message: fmt.Sprintf("panic: %v", r), Tries: try}
			}
		}
	}()
	for ; len(pending) > 0; try++ {
		if try > 1 {
			if err := p.sleep(ctx, try-1); err != nil {
				for _, i := range pending {
					errs[i] = &Error{Tries: try - 1, Err: err}
				}
				return
			}
		}
		batch := make([]types.SendMessageBatchRequestEntry, len(pending))
		for k, i := range pending {
			batch[k] = types.SendMessageBatchRequestEntry{
				Id:           aws.String(strconv.Itoa(i)),
				MessageBody:  aws.String(entries[i].Body),
				DelaySeconds: int32(entries[i].DelaySeconds),
			}
		}
		out, err := p.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.queueURL), Entries: batch})
		if err != nil {
			for _, i := range pending {
				errs[i] = &Error{Tries: try, Err: err}
			}
			return
		}
		results := make(map[string]*Error, len(pending))
		for _, s := range out.Successful {
			results[aws.ToString(s.Id)] = nil
		}
		for _, f := range out.Failed {
			results[aws.ToString(f.Id)] = &Error{
				Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), Permanent: f.SenderFault, Tries: try,
			}
		}
		var again []int
		for _, i := range pending {
			e, ok := results[strconv.Itoa(i)]
			switch {
			case !ok:
				e = &Error{Message: "SQS reported no result for the entry", Tries: try}
			case e == nil:
				errs[i] = nil
				continue
			}
			errs[i] = e
			if !e.Permanent && try < maxTries {
				again = append(again, i)
			}
		}
		pending = again
	}
}

// sleep waits before re-send n: a random time up to BaseDelay doubled n-1 times, capped at
// MaxDelay (no cap when MaxDelay is zero). It returns early with ctx's error.
func (p *Producer) sleep(ctx context.Context, n int) error {
	return backoff.Policy{Base: p.BaseDelay, Max: p.MaxDelay}.Wait(ctx, n)
}
