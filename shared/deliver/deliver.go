// Package deliver is the SQS-triggered delivery function's handler: it pushes every
// record of a batch to its target concurrently, records each result and hands retries back to
// SQS with a backoff.
//
// Ships in the deliver function.
package deliver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/runner"
	"github.com/pushfn/pushfn/shared/store"
)

// Queue is the part of SQS the handler calls: changing the visibility of records it returns.
type Queue interface {
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ Queue = (*sqs.Client)(nil)

// Sender makes one delivery attempt; *push.Client is the real one.
type Sender interface {
	Send(ctx context.Context, r push.Request) push.Result
}

var _ Sender = (*push.Client)(nil)

// Defaults for the Handler's own time budgets.
const (
	// DefaultStoreBudget is the time allowed around a send for the claim and the result write.
	DefaultStoreBudget = 2 * time.Second
	// DefaultMargin is kept free before the invocation's deadline for the visibility changes
	// and the response.
	DefaultMargin = 2 * time.Second
)

// Handler delivers batches of SQS records. Its fields are set once, before the first call, and
// never changed; one Handler serves concurrent invocations.
type Handler struct {
	Store    store.Store
	Sender   Sender
	Queue    Queue  // nil: no visibility changes are made (benchmarks)
	QueueURL string // the queue the records come from
	Config   config.Config
	Log      *slog.Logger // nil: no logs

	// StoreBudget is the time allowed for the claim and the result write of one record, on top
	// of the request timeout; 0 means DefaultStoreBudget.
	StoreBudget time.Duration
	// Margin is kept free before the invocation's deadline; 0 means DefaultMargin.
	Margin time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter returns a duration in [0, d]; nil means uniformly random.
	Jitter func(d time.Duration) time.Duration
}

// verdict is what becomes of one SQS record.
type verdict int

const (
	ack        verdict = iota // deleted from the queue: final, malformed or a duplicate
	giveBack                  // a batch item failure, visible again after the queue's timeout
	retry                     // a batch item failure, visible again after job.delay
	notStarted                // a batch item failure, visible again at once
)

// job is one record of the batch, as parsed, and what became of it.
type job struct {
	msg     *events.SQSMessage
	env     message.Envelope
	host    string
	url     *url.URL
	bad     error // why the record is malformed
	dup     bool  // an earlier record of the batch carries the same message
	verdict verdict
	delay   time.Duration
}

// Handle delivers ev's records and reports those SQS must redeliver. It returns an error only
// when the whole batch must be retried, which it never needs to: every record has its verdict.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	jobs := make([]job, len(ev.Records))
	var mu sync.Mutex
	seen := make(map[string]struct{}, len(ev.Records))
	// Records are parsed by the runner's workers, just before each is scheduled by its host.
	key := func(i int) string {
		j := &jobs[i]
		j.msg = &ev.Records[i]
		h.parse(j)
		if j.bad == nil {
			mu.Lock()
			_, j.dup = seen[j.env.ID]
			seen[j.env.ID] = struct{}{}
			mu.Unlock()
		}
		return j.host
	}

	var tok [8]byte
	_, _ = rand.Read(tok[:])
	prefix := hex.EncodeToString(tok[:]) + "-"
	r := runner.Runner{
		Limit:   h.Config.MaxConcurrency,
		PerKey:  h.Config.MaxPerHost,
		Timeout: h.Config.RequestTimeout + h.storeBudget(),
		Margin:  h.margin(),
	}
	results := r.Run(ctx, len(jobs), key, func(ctx context.Context, i int) error {
		j := &jobs[i]
		if j.dup {
			// An earlier record of this batch carries the same message; its fate covers this one.
			h.log().InfoContext(ctx, "duplicate record in batch", "message_id", j.env.ID, "sqs_message_id", j.msg.MessageId)
			return nil
		}
		h.deliver(ctx, j, prefix+strconv.Itoa(i))
		j.env.Payload = nil // sent: let it be collected while the batch goes on
		return nil
	})
	for i, err := range results {
		j := &jobs[i]
		var pe *runner.PanicError
		switch {
		case errors.Is(err, runner.ErrNotStarted):
			j.verdict = notStarted
		case errors.As(err, &pe):
			j.verdict = giveBack
			h.log().ErrorContext(ctx, "delivery panicked", "message_id", j.env.ID, "target_host", j.host, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		}
	}

	var resp events.SQSEventResponse
	var changes []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	for i := range jobs {
		j := &jobs[i]
		if j.verdict == ack {
			continue
		}
		msg := &ev.Records[i]
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		switch j.verdict {
		case retry, notStarted:
			changes = append(changes, sqstypes.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				ReceiptHandle:     aws.String(msg.ReceiptHandle),
				VisibilityTimeout: visibilitySeconds(j.delay),
			})
		}
	}
	h.changeVisibility(ctx, changes)
	return resp, nil
}

// parse reads the envelope of j's record and the host it goes to, or says why it is malformed.
func (h *Handler) parse(j *job) {
	env, err := decodeEnvelope(j.msg.Body)
	if err != nil {
		var idOnly struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(j.msg.Body), &idOnly)
		j.env = message.Envelope{ID: idOnly.ID}
		j.bad = fmt.Errorf("not a message envelope: %w", err)
		return
	}
	j.env = env
	if !message.ValidID(j.env.ID) {
		j.bad = errors.New("no valid message id")
		return
	}
	u, err := url.Parse(j.env.Target.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		j.bad = errors.New("target url is not an absolute http(s) URL")
	case u.Scheme == "http" && !h.Config.AllowHTTPTargets:
		j.bad = errors.New("target url is plain http, which is not allowed")
	case len(j.env.Payload) == 0 || string(j.env.Payload) == "null":
		j.bad = errors.New("no payload")
	default:
		j.url = u
		j.host = strings.ToLower(u.Host)
	}
}

// deliver runs one record: claim, send, record the result, and sets j's verdict.
func (h *Handler) deliver(ctx context.Context, j *job, token string) {
	log := h.log()
	id := j.env.ID
	now := h.now()
	if j.bad != nil {
		j.verdict = ack
		log.WarnContext(ctx, "malformed record", "sqs_message_id", j.msg.MessageId, "message_id", id, "reason", j.bad.Error())
		if message.ValidID(id) {
			h.finishUnclaimed(ctx, j, store.Outcome{Now: now, Status: message.Failed, Attempt: &message.Attempt{At: now, Error: "malformed message: " + j.bad.Error()}})
		}
		return
	}
	if exp := j.env.ExpiresAt; exp != nil && !now.Before(*exp) {
		j.verdict = ack
		log.InfoContext(ctx, "delivery", "message_id", id, "target_host", j.host, "status", message.Expired)
		h.finishUnclaimed(ctx, j, store.Outcome{Now: now, Status: message.Expired})
		return
	}

	rec, err := h.Store.Claim(ctx, id, store.Claim{Now: now, Lease: h.Config.RequestTimeout + h.storeBudget(), Token: token})
	switch {
	case errors.Is(err, store.ErrFinal):
		j.verdict = ack
		log.InfoContext(ctx, "already final, not sent", "message_id", id, "target_host", j.host)
		return
	case errors.Is(err, store.ErrLeased):
		j.verdict = giveBack
		log.InfoContext(ctx, "leased by another worker, not sent", "message_id", id, "target_host", j.host)
		return
	case errors.Is(err, store.ErrNotFound):
		// The api removed the record because it could not queue the message and answered 503:
		// the caller retries with a new copy, so this one must not be sent.
		j.verdict = ack
		log.WarnContext(ctx, "no record for message, not sent", "message_id", id, "target_host", j.host)
		return
	case err != nil:
		j.verdict = giveBack
		log.ErrorContext(ctx, "claim failed", "message_id", id, "target_host", j.host, "error", err.Error())
		return
	}
	if rec.Attempts > h.Config.MaxAttempts {
		// Earlier workers claimed it and died before recording a result, too often.
		h.finish(ctx, j, rec.Attempts, store.Outcome{Now: now, Status: message.Failed, Token: token,
			Attempt: &message.Attempt{At: now, Error: "attempts exhausted"}})
		return
	}

	res := h.Sender.Send(ctx, push.Request{ID: id, URL: j.env.Target.URL, Parsed: j.url, Headers: j.env.Target.Headers, Body: j.env.Payload, Now: now,
		Timeout: h.Config.RequestTimeout})

	attempt := &message.Attempt{At: now, StatusCode: res.StatusCode, DurationMS: res.Duration.Milliseconds()}
	if res.Err != nil {
		attempt.Error = res.Err.Error()
	}
	o := store.Outcome{Now: h.now(), Token: token, Attempt: attempt}
	switch {
	case res.Outcome == push.Delivered:
		o.Status = message.Delivered
	case res.Outcome == push.Retryable && rec.Attempts < h.Config.MaxAttempts:
		o.Status = message.Retrying
	default:
		o.Status = message.Failed
	}
	h.finish(ctx, j, rec.Attempts, o)
	if j.verdict == retry {
		j.delay = h.backoff(rec.Attempts, res.RetryAfter)
	}
}

// finish records the outcome of a claimed record and sets j's verdict.
func (h *Handler) finish(ctx context.Context, j *job, attempts int, o store.Outcome) {
	log := h.log()
	_, err := h.Store.Finish(ctx, j.env.ID, o)
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		// Another worker took the lease over with its own copy of the record; that copy goes on.
		j.verdict = ack
		log.WarnContext(ctx, "lease lost before the result was recorded", "message_id", j.env.ID, "target_host", j.host, "attempt", attempts, "status", o.Status)
		return
	case err != nil:
		j.verdict = giveBack
		log.ErrorContext(ctx, "recording the result failed", "message_id", j.env.ID, "target_host", j.host, "attempt", attempts, "status", o.Status, "error", err.Error())
		return
	}
	if o.Status == message.Retrying {
		j.verdict = retry
	} else {
		j.verdict = ack
	}
	a := o.Attempt
	// LogAttrs checks the level before anything is built: this line runs once per push.
	log.LogAttrs(ctx, slog.LevelInfo, "delivery", slog.String("message_id", j.env.ID), slog.String("target_host", j.host),
		slog.Int("attempt", attempts), slog.String("status", string(o.Status)), slog.Int("status_code", a.StatusCode),
		slog.Int64("duration_ms", a.DurationMS), slog.String("error", a.Error))
}

// finishUnclaimed ends a record that was never claimed (malformed or expired); a record already
// final or gone is left as it is.
func (h *Handler) finishUnclaimed(ctx context.Context, j *job, o store.Outcome) {
	_, err := h.Store.Finish(ctx, j.env.ID, o)
	if err == nil || errors.Is(err, store.ErrFinal) || errors.Is(err, store.ErrNotFound) {
		return
	}
	j.verdict = giveBack
	h.log().ErrorContext(ctx, "recording the end of a message failed", "message_id", j.env.ID, "status", o.Status, "error", err.Error())
}

// backoff is the delay before the next attempt after attempt n (1-based): exponential from the
// base delay, doubling up to the maximum, with full jitter; a Retry-After wins, capped too.
func (h *Handler) backoff(n int, retryAfter time.Duration) time.Duration {
	maxDelay := h.Config.RetryMaxDelay
	if retryAfter > 0 {
		return min(retryAfter, maxDelay)
	}
	d := h.Config.RetryBaseDelay
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	if h.Jitter != nil {
		return h.Jitter(d)
	}
	if d <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(d) + 1))
}

// maxVisibility is SQS's limit on a visibility timeout: 12 hours.
const maxVisibility = 12 * 60 * 60

// visibilitySeconds rounds d up to whole seconds within SQS's limits.
func visibilitySeconds(d time.Duration) int32 {
	s := (d + time.Second - 1) / time.Second
	return int32(min(max(s, 0), maxVisibility))
}

// changeVisibility applies the visibility changes, ten per call as SQS allows, a few calls at a
// time. A change that fails leaves the record to the queue's own visibility timeout, so it is
// only logged.
func (h *Handler) changeVisibility(ctx context.Context, changes []sqstypes.ChangeMessageVisibilityBatchRequestEntry) {
	if h.Queue == nil || len(changes) == 0 {
		return
	}
	const perCall = 10
	calls := (len(changes) + perCall - 1) / perCall
	runner.Runner{Limit: 16}.Run(ctx, calls, func(int) string { return "" }, func(ctx context.Context, c int) error {
		entries := changes[c*perCall : min((c+1)*perCall, len(changes))]
		out, err := h.Queue.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(h.QueueURL), Entries: entries})
		if err != nil {
			h.log().ErrorContext(ctx, "changing visibility failed", "records", len(entries), "error", err.Error())
			return nil
		}
		for _, f := range out.Failed {
			h.log().ErrorContext(ctx, "changing visibility failed", "entry", aws.ToString(f.Id), "code", aws.ToString(f.Code))
		}
		return nil
	})
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return discard
	}
	return h.Log
}

var discard = slog.New(slog.DiscardHandler)

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

func (h *Handler) storeBudget() time.Duration {
	if h.StoreBudget > 0 {
		return h.StoreBudget
	}
	return DefaultStoreBudget
}

func (h *Handler) margin() time.Duration {
	if h.Margin > 0 {
		return h.Margin
	}
	return DefaultMargin
}
