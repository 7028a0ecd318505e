// Package deliver is the SQS-triggered delivery function's handler: it pushes every
// record of a batch to its target concurrently, records each result and hands retries back to
// SQS with a backoff.
//
// Ships in the deliver function.
package deliver

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.opentelemetry.io/otel/trace"

	"github.com/pushfn/pushfn/shared/backoff"
	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/ratelimit"
	"github.com/pushfn/pushfn/shared/runner"
	"github.com/pushfn/pushfn/shared/store"
)

// Queue is the part of SQS the handler calls: changing the visibility of records it returns.
type Queue interface {
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ Queue = (*sqs.Client)(nil)

// Producer queues new copies: the deliveries a fan-out expands into. *queue.Producer is the
// real one.
type Producer interface {
	Send(ctx context.Context, entries []queue.Entry) []error
}

var _ Producer = (*queue.Producer)(nil)

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

// Delays of records handed back because a dependency failed (the claim or the result write could
// not reach DynamoDB): short, so delivery resumes within about a minute of an outage's end, and
// growing with the record's receive count, so an outage is not hammered.
const (
	DependencyBaseDelay = 2 * time.Second
	DependencyMaxDelay  = 30 * time.Second
)

// Delays between tries of a result write that failed for a reason other than a conflict
// (throttling, a timeout, a 5xx), on top of the SDK's own retries.
const (
	resultRetryBase = 50 * time.Millisecond
	resultRetryMax  = time.Second
)

// noDeadlineBudget bounds the result write's tries when the invocation has no deadline (tests,
// benchmarks): a Lambda invocation always has one.
const noDeadlineBudget = time.Minute

// Handler delivers batches of SQS records. Its fields are set once, before the first call, and
// never changed; one Handler serves concurrent invocations.
type Handler struct {
	Store  store.Store
	Sender Sender
	// Endpoints finds the endpoints of messages sent to one by id; nil hands such messages back
	// as if the endpoint store could not be read.
	Endpoints Endpoints
	Queue     Queue  // nil: no visibility changes are made (benchmarks)
	QueueURL  string // the queue the records come from
	// Producer queues copies to the queue the records come from, and Subscribers lists the
	// endpoints a fan-out may go to; without both, fan-outs are handed back as if the queue or
	// the store could not be reached.
	Producer    Producer
	Subscribers Subscribers
	// Listing lists an endpoint's deliveries for recoveries; without it (and Producer), a
	// recovery is handed back as if the store could not be reached.
	Listing Listing
	// Limiter hands out the send slots of endpoints with a rate limit; nil leaves the limits
	// unenforced (benchmarks, tests of other things).
	Limiter Limiter
	// Health keeps the health of endpoints, and disables those failing for longer than
	// Config.EndpointDisableAfter; nil keeps none.
	Health *Health
	Config config.Config
	Log    *slog.Logger // nil: no logs

	// Events takes the operational events of the handler's invocations (a record that ended
	// failed) and sends them at the end of each; nil publishes none.
	Events Events
	// Metrics takes each invocation's metrics, written once at its end; nil writes none.
	Metrics *metrics.Writer
	// Tracer makes a span around each push, under the invocation's, and the push client sends
	// its context to the target; nil (tracing off) makes none.
	Tracer trace.Tracer

	// StoreBudget is the time allowed for the claim of one record, on top of the request
	// timeout; 0 means DefaultStoreBudget. The result write has a budget of its own: it is
	// tried until the invocation's deadline less the margin.
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
	ack      verdict = iota // deleted from the queue: final, malformed, stale or a duplicate
	handBack                // a batch item failure, visible again after job.delay
	crashed                 // a batch item failure left to the queue's visibility timeout
)

// job is one record of the batch, as parsed, and what became of it.
type job struct {
	msg  *events.SQSMessage
	env  message.Envelope
	host string
	url  *url.URL
	bad  error // why the record is malformed
	// ep is the endpoint a message to an endpoint goes to, or epErr why it could not be had.
	ep    *Endpoint
	epErr error
	dup   bool // an earlier record of the batch carries the same message
	// deadLetter: this is the copy's last receive and its message is recorded failed
	// (dead-lettered); handed back, the copy goes to the dead-letter queue, to be redriven.
	deadLetter bool
	slot       ratelimit.Slot // the rate-limit slot the send goes in; Rate 0 when none
	verdict    verdict
	delay      time.Duration
	// What the invocation's metrics count: the status a result write recorded, the duration of
	// the attempt when one was sent, a lease another worker held or took over, a record not
	// started before the deadline.
	outcome       message.Status
	sent          bool
	took          time.Duration
	leaseConflict bool
	notStarted    bool
}

// copyKey identifies the message a copy carries: its id and its record's fingerprint.
type copyKey struct{ id, fingerprint string }

// Handle delivers ev's records and reports those SQS must redeliver. It returns an error only
// when the whole batch must be retried, which it never needs to: every record has its verdict.
// The visibility of a record handed back is set as soon as its verdict is known.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	m := h.Metrics.Invocation()
	ctx = metrics.NewContext(ctx, m) // the AWS requests of the invocation count into m
	jobs := make([]job, len(ev.Records))
	var mu sync.Mutex
	seen := make(map[copyKey]struct{}, len(ev.Records))
	// Records are parsed by the runner's workers, just before each is scheduled by its host.
	key := func(i int) string {
		j := &jobs[i]
		j.msg = &ev.Records[i]
		h.parse(j)
		if j.bad == nil && j.env.EndpointID != "" && j.host != recoveryKey {
			h.findEndpoint(ctx, j)
		}
		if j.bad == nil {
			// A copy with another fingerprint is another message's (or a stale) copy: it does
			// not stand in for this one.
			k := copyKey{j.env.ID, j.env.Fingerprint}
			mu.Lock()
			_, j.dup = seen[k]
			seen[k] = struct{}{}
			mu.Unlock()
		}
		return j.host
	}

	var tok [8]byte
	_, _ = rand.Read(tok[:])
	prefix := hex.EncodeToString(tok[:]) + "-"
	vis := h.newVisibility(ctx)
	// Every result write of the invocation shares one budget, ending the margin before its
	// deadline: built once, not per push.
	writes, cancelWrites := h.resultContext(ctx)
	defer cancelWrites()
	r := runner.Runner{
		Limit:   h.Config.MaxConcurrency,
		PerKey:  h.Config.MaxPerHost,
		Timeout: h.Config.RequestTimeout + h.storeBudget(),
		Margin:  h.margin(),
	}
	results := r.Run(ctx, len(jobs), key, func(itemCtx context.Context, i int) error {
		j := &jobs[i]
		if j.dup {
			// An earlier record of this batch is a copy of the same message; its fate covers
			// this one.
			h.log().InfoContext(itemCtx, "duplicate record in batch", "message_id", j.env.ID, "sqs_message_id", j.msg.MessageId)
			return nil
		}
		h.deliver(ctx, writes, itemCtx, j, prefix+strconv.Itoa(i))
		j.env.Payload = nil // sent: let it be collected while the batch goes on
		if j.verdict == handBack {
			vis.set(i, j.msg, j.delay)
		}
		return nil
	})
	for i, err := range results {
		j := &jobs[i]
		var pe *runner.PanicError
		switch {
		case errors.Is(err, runner.ErrNotStarted):
			// No attempt was made: visible again at once, for another invocation to start.
			j.verdict, j.delay, j.notStarted = handBack, 0, true
			vis.set(i, &ev.Records[i], 0)
			if h.lastReceive(&ev.Records[i]) {
				h.deadLetterUnstarted(ctx, j, &ev.Records[i])
			}
		case errors.As(err, &pe):
			j.verdict = crashed
			h.log().ErrorContext(ctx, "delivery panicked", "message_id", j.env.ID, "target_host", j.host, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		}
	}
	vis.close()
	h.flushEvents(ctx)
	h.writeMetrics(ctx, m, jobs)

	var resp events.SQSEventResponse
	for i := range jobs {
		if jobs[i].verdict != ack {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// parse reads the envelope of j's record and the host it goes to, or says why it is malformed.
func (h *Handler) parse(j *job) {
	env, err := decodeEnvelope(j.msg.Body)
	if err != nil {
		var known struct {
			ID          string `json:"id"`
			Fingerprint string `json:"fingerprint"`
		}
		_ = json.Unmarshal([]byte(j.msg.Body), &known)
		j.env = message.Envelope{ID: known.ID, Fingerprint: known.Fingerprint}
		j.bad = fmt.Errorf("not a message envelope: %w", err)
		return
	}
	j.env = env
	switch {
	case message.ValidRecoveryID(j.env.ID):
		j.bad = checkRecovery(j.env)
		j.host = recoveryKey
		return
	case j.env.MessageID != "":
		j.bad = checkDelivery(j.env)
		if j.bad != nil {
			return
		}
	case !message.ValidID(j.env.ID):
		j.bad = errors.New("no valid message id")
		return
	case j.env.EventType != "":
		j.bad = checkExpansion(j.env)
		j.host = fanoutKey
		return
	}
	if j.env.EndpointID != "" {
		switch {
		case j.env.Target.URL != "" || j.env.Target.Headers != nil:
			j.bad = errors.New("both a target and an endpoint id")
		case !message.ValidEndpointID(j.env.EndpointID):
			j.bad = errors.New("endpoint id is not one pushfn issues")
		case len(j.env.Payload) == 0 || string(j.env.Payload) == "null":
			j.bad = errors.New("no payload")
		}
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

// deliver runs one record: claim, send, record the result, and sets j's verdict and delay. The
// claim and the send run under itemCtx, bounded by the request timeout and the store budget; the
// result write under writes, the invocation's budget for result writes (see resultContext). inv
// is the invocation's context, whose deadline the lease runs to.
func (h *Handler) deliver(inv, writes, itemCtx context.Context, j *job, token string) {
	ctx := itemCtx
	log := h.log()
	id := j.env.ID
	now := h.now()
	if j.bad != nil {
		h.malformed(ctx, j, now)
		return
	}
	if exp := j.env.ExpiresAt; exp != nil && !now.Before(*exp) {
		log.InfoContext(ctx, "delivery", "message_id", id, "target_host", j.host, "status", message.Expired)
		h.finishUnclaimed(ctx, j, store.Outcome{Now: now, Status: message.Expired, Fingerprint: j.env.Fingerprint, New: h.newRecord(j)})
		return
	}
	if j.env.EventType != "" {
		h.expand(inv, writes, j, token)
		return
	}
	if message.ValidRecoveryID(id) {
		h.recoverWindow(inv, writes, j, token)
		return
	}

	if j.env.EndpointID != "" && (!h.endpointOpen(ctx, j, now) || !h.awaitSlot(inv, ctx, j)) {
		return
	}
	if j.slot.Rate > 0 {
		// The wait for the slot took from the item's time, not from the claim's and the send's:
		// they get theirs anew (awaitSlot checked the invocation has it).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(itemCtx), h.Config.RequestTimeout+h.storeBudget())
		defer cancel()
	}

	lease := h.lease(inv)
	rec, err := h.Store.Claim(ctx, id, store.Claim{Now: now, Lease: lease, Token: token, Fingerprint: j.env.Fingerprint, New: h.newRecord(j)})
	if h.refused(ctx, j, err, now) {
		return
	}
	if rec.Attempts > h.Config.MaxAttempts {
		// Earlier workers claimed it and died before recording a result, too often.
		h.finish(writes, j, rec.Attempts, store.Outcome{Now: now, Status: message.Failed, Token: token,
			Attempt: &message.Attempt{At: now, Error: "attempts exhausted"}}, 0)
		return
	}
	if j.slot.Rate > 0 && !h.now().Before(j.slot.SendBy()) {
		h.slotMissed(writes, j, rec.Attempts, token)
		return
	}

	// The item's context ends only at its deadline, which the runner set past the send's
	// timeout; the push is handed a context that is never cancelled, bounded by its own timeout
	// (kept within the item's deadline), so it does not watch for a cancellation that cannot
	// come. On the deliver bench (0 ms, 100 connections, 5 alternating runs) the watch cost
	// 2.4 us of 21 us of CPU per push, and 10 % of the rate.
	timeout := h.Config.RequestTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	// Every delivery of a fan-out carries its message's id, so a receiver deduplicates by it.
	req := push.Request{ID: cmp.Or(j.env.MessageID, id), URL: j.env.Target.URL, Parsed: j.url, Headers: j.env.Target.Headers, Body: j.env.Payload, Now: now,
		Timeout: timeout}
	if ep := j.ep; ep != nil {
		req.URL, req.Headers, req.Keys = ep.URL, ep.Headers, ep.Keys(now)
	}
	sendCtx := context.WithoutCancel(ctx)
	var span trace.Span
	if h.Tracer != nil {
		sendCtx, span = h.startPush(sendCtx, j, rec.Attempts)
	}
	res := h.Sender.Send(sendCtx, req)
	if span != nil {
		endPush(span, res)
	}
	j.sent, j.took = true, res.Duration

	attempt := &message.Attempt{At: now, StatusCode: res.StatusCode, DurationMS: res.Duration.Milliseconds()}
	if res.Err != nil {
		attempt.Error = res.Err.Error()
	}
	o := store.Outcome{Now: h.now(), Token: token, Attempt: attempt}
	switch {
	case res.Outcome == push.Delivered:
		o.Status = message.Delivered
	case res.Outcome == push.Retryable && rec.Attempts < h.Config.MaxAttempts && h.lastReceive(j.msg):
		// Handed back, this copy goes to the dead-letter queue: nothing would retry it, so the
		// record must not say retrying.
		o.Status, j.deadLetter = message.Failed, true
		attempt.Error = message.ReasonDeadLettered + ": " + cmp.Or(attempt.Error, "status "+strconv.Itoa(attempt.StatusCode))
	case res.Outcome == push.Retryable && rec.Attempts < h.Config.MaxAttempts:
		o.Status = message.Retrying
	default:
		o.Status = message.Failed
	}
	h.finish(writes, j, rec.Attempts, o, res.RetryAfter)
	if j.ep != nil {
		h.trackHealth(writes, j, res.Outcome == push.Delivered, now)
	}
}

// lease is how long a claim holds its record: the send and the result write's own budget, which
// runs to the invocation's deadline, so that no other copy may be sent while this worker can
// still record.
func (h *Handler) lease(inv context.Context) time.Duration {
	lease := h.Config.RequestTimeout + h.storeBudget()
	if d, ok := inv.Deadline(); ok {
		lease = max(lease, time.Until(d))
	}
	return lease
}

// refused reports whether the claim of j's record failed with err, and if so sets j's verdict:
// acknowledged when the record is final, of another message or gone; handed back when it is
// leased by another worker or the store could not be reached.
func (h *Handler) refused(ctx context.Context, j *job, err error, now time.Time) bool {
	log := h.log()
	id := j.env.ID
	var ce *store.ConflictError
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrFinal):
		j.verdict = ack
		log.InfoContext(ctx, "already final, not sent", "message_id", id, "target_host", j.host)
	case errors.Is(err, store.ErrStale):
		// The record now belongs to a later message under the same key, which has copies of
		// its own: this one must never be sent.
		j.verdict = ack
		log.WarnContext(ctx, "copy of an earlier message under the same key, not sent", "message_id", id, "target_host", j.host)
	case errors.Is(err, store.ErrLeased) && errors.As(err, &ce):
		h.handBackFor(j, ce.Record, now)
		j.leaseConflict = true
		log.InfoContext(ctx, "leased by another worker, not sent", "message_id", id, "target_host", j.host, "visible_in_ms", j.delay.Milliseconds())
	case errors.Is(err, store.ErrNotFound):
		// The api removed the record because it could not queue the message and answered 503:
		// the caller retries with a new copy, so this one must not be sent.
		j.verdict = ack
		log.WarnContext(ctx, "no record for message, not sent", "message_id", id, "target_host", j.host)
	default:
		h.dependencyFailed(j)
		log.ErrorContext(ctx, "claim failed", "message_id", id, "target_host", j.host, "error", err.Error())
	}
	return true
}

// malformed acknowledges a record that cannot be delivered. It never changes the record of the
// message whose id it carries unless the copy proves to be that record's own (its fingerprint is
// the record's): a broken copy under a good message's id must not fail that message.
func (h *Handler) malformed(ctx context.Context, j *job, now time.Time) {
	j.verdict = ack
	log := h.log()
	id := j.env.ID
	if !message.ValidID(id) || j.env.Fingerprint == "" {
		log.WarnContext(ctx, "malformed record, not recorded", "sqs_message_id", j.msg.MessageId, "message_id", id, "reason", j.bad.Error())
		return
	}
	o := store.Outcome{Now: now, Status: message.Failed, Fingerprint: j.env.Fingerprint,
		Attempt: &message.Attempt{At: now, Error: "malformed message: " + j.bad.Error()}}
	rec, err := h.Store.Finish(ctx, id, o)
	if err != nil {
		log.WarnContext(ctx, "malformed record, not recorded", "sqs_message_id", j.msg.MessageId, "message_id", id, "reason", j.bad.Error(), "error", err.Error())
		return
	}
	h.ended(j, rec, o, 0)
	log.WarnContext(ctx, "malformed record, recorded failed", "sqs_message_id", j.msg.MessageId, "message_id", id, "reason", j.bad.Error())
}

// finish records the outcome of a claimed record and sets j's verdict. The write has its own
// budget, ctx from resultContext (up to the invocation's deadline less the margin), whatever the
// send left: failures other than a conflict (throttling, timeouts) are tried again until then, so
// a slow 2xx is not followed by a second POST because one write was throttled.
func (h *Handler) finish(ctx context.Context, j *job, attempts int, o store.Outcome, retryAfter time.Duration) {
	log := h.log()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, noDeadlineBudget)
		defer cancel()
	}
	keep(j, &o)
	var rec message.Record
	var err error
	pause := backoff.Policy{Base: resultRetryBase, Max: resultRetryMax, Jitter: h.Jitter}
	for try := 1; ; try++ {
		rec, err = h.Store.Finish(ctx, j.env.ID, o)
		if err == nil || conflict(err) || pause.Wait(ctx, try) != nil {
			break
		}
		log.WarnContext(ctx, "recording the result failed, trying again", "message_id", j.env.ID, "target_host", j.host, "attempt", attempts, "try", try, "error", err.Error())
	}
	var ce *store.ConflictError
	switch {
	case errors.Is(err, store.ErrLeaseLost) && errors.As(err, &ce):
		// The lease ran out and another worker took the record over, or moved it on. This
		// copy is acknowledged only if the record no longer waits for delivery.
		h.handBackFor(j, ce.Record, h.now())
		j.leaseConflict = true
		log.WarnContext(ctx, "lease lost before the result was recorded", "message_id", j.env.ID, "target_host", j.host, "attempt", attempts, "status", o.Status, "record_status", ce.Record.Status)
		return
	case err != nil:
		// The result is not recorded: the record is leased until its lease runs out, then
		// taken over by this copy, handed back to SQS. A 2xx sent is sent again only then.
		h.dependencyFailed(j)
		log.ErrorContext(ctx, "recording the result failed", "message_id", j.env.ID, "target_host", j.host, "attempt", attempts, "status", o.Status, "error", err.Error())
		return
	}
	h.ended(j, rec, o, attempts)
	switch {
	case j.deadLetter:
		j.verdict, j.delay = handBack, 0
	case o.Status == message.Retrying:
		j.verdict, j.delay = handBack, h.backoff(attempts, retryAfter)
	default:
		j.verdict = ack
	}
	a := o.Attempt
	// LogAttrs checks the level before anything is built: this line runs once per push.
	log.LogAttrs(ctx, slog.LevelInfo, "delivery", slog.String("message_id", j.env.ID), slog.String("target_host", j.host),
		slog.String("endpoint_id", j.env.EndpointID), slog.Int("attempt", attempts), slog.String("status", string(o.Status)), slog.Int("status_code", a.StatusCode),
		slog.Int64("duration_ms", a.DurationMS), slog.String("error", a.Error))
}

// keep has o, when it ends j's record failed or expired, keep j's copy (the SQS message body as
// received, its payload's bytes untouched), so that the message can be reopened and delivered
// again. Only a well-formed copy is kept: a malformed one never comes here.
func keep(j *job, o *store.Outcome) {
	if o.Status == message.Failed || o.Status == message.Expired {
		o.Keep = []byte(j.msg.Body)
	}
}

// resultContext is the budget of the invocation's result writes: its deadline less the margin,
// not cancelled with the items. An invocation without a deadline (tests, benchmarks) gets none
// here; finish then bounds each write by noDeadlineBudget.
func (h *Handler) resultContext(inv context.Context) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(inv)
	if d, ok := inv.Deadline(); ok {
		return context.WithDeadline(base, d.Add(-h.margin()))
	}
	return base, func() {}
}

// conflict reports whether err is the store's answer about the record, which no retry changes.
func conflict(err error) bool {
	var ce *store.ConflictError
	return errors.As(err, &ce) || errors.Is(err, store.ErrNotFound)
}

// handBackFor sets j's verdict after rec, the record as another worker left it: acknowledged when
// rec is final; else handed back to become visible when rec's lease runs out, or when rec's own
// retry is due.
func (h *Handler) handBackFor(j *job, rec message.Record, now time.Time) {
	switch {
	case rec.Status.Final():
		j.verdict = ack
	case rec.Status == message.Delivering && rec.LeaseUntil.After(now):
		j.verdict, j.delay = handBack, rec.LeaseUntil.Sub(now)
	case rec.Status == message.Retrying:
		j.verdict, j.delay = handBack, h.backoff(rec.Attempts, 0)
	default:
		h.dependencyFailed(j)
	}
}

// dependencyFailed hands j back after a short delay: the store could not be reached.
func (h *Handler) dependencyFailed(j *job) {
	j.verdict = handBack
	j.delay = backoff.Policy{Base: DependencyBaseDelay, Max: DependencyMaxDelay, Jitter: h.Jitter}.Delay(receives(j.msg))
	if h.lastReceive(j.msg) {
		// The store cannot be reached to say so: the record keeps its state while the copy goes
		// to the dead-letter queue, from which it can be redriven.
		h.log().Error("copy goes to the dead-letter queue, its record could not say so", "message_id", j.env.ID, "sqs_message_id", j.msg.MessageId)
	}
}

// finishUnclaimed ends a record that was never claimed (an expired copy). A record already final
// or gone is left as it is; one leased by a live worker is handed back until that lease ends.
func (h *Handler) finishUnclaimed(ctx context.Context, j *job, o store.Outcome) {
	keep(j, &o)
	rec, err := h.Store.Finish(ctx, j.env.ID, o)
	if err == nil {
		h.ended(j, rec, o, 0)
	}
	var ce *store.ConflictError
	switch {
	case err == nil || errors.Is(err, store.ErrFinal) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrStale):
		j.verdict = ack
	case errors.Is(err, store.ErrLeased) && errors.As(err, &ce):
		h.handBackFor(j, ce.Record, o.Now)
		j.leaseConflict = true
	default:
		h.dependencyFailed(j)
		h.log().ErrorContext(ctx, "recording the end of a message failed", "message_id", j.env.ID, "status", o.Status, "error", err.Error())
	}
}

// lastReceive reports whether msg goes to the dead-letter queue if it is handed back: its receive
// count has reached the queue's maxReceiveCount (when the configuration knows it).
func (h *Handler) lastReceive(msg *events.SQSMessage) bool {
	return h.Config.MaxReceiveCount > 0 && receives(msg) >= h.Config.MaxReceiveCount
}

// receives is how many times SQS has handed msg out, this time included; 0 when unknown.
func receives(msg *events.SQSMessage) int {
	n, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	return n
}

// deadLetterUnstarted records failed (dead-lettered) the message of a copy that was not started
// on its last receive, within what is left of the invocation: handed back, it goes to the
// dead-letter queue and nothing would deliver it. A record leased by a live worker, final, or
// of another message is left alone.
func (h *Handler) deadLetterUnstarted(ctx context.Context, j *job, msg *events.SQSMessage) {
	if j.msg == nil { // never scheduled, so never parsed
		j.msg = msg
		h.parse(j)
	}
	if j.bad != nil || j.env.Fingerprint == "" {
		return
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < h.margin()/2 {
		// The rest of the margin is for the response: a late answer would return the batch.
		h.log().ErrorContext(ctx, "copy goes to the dead-letter queue, no time left for its record to say so", "message_id", j.env.ID)
		return
	}
	now := h.now()
	o := store.Outcome{Now: now, Status: message.Failed, Fingerprint: j.env.Fingerprint,
		Attempt: &message.Attempt{At: now, Error: message.ReasonDeadLettered + ": not started before the invocation's deadline"},
		New:     h.newRecord(j)}
	keep(j, &o)
	rec, err := h.Store.Finish(ctx, j.env.ID, o)
	if err == nil {
		h.ended(j, rec, o, 0)
	}
	if err != nil && !conflict(err) {
		h.log().ErrorContext(ctx, "copy goes to the dead-letter queue, its record could not say so", "message_id", j.env.ID, "error", err.Error())
		return
	}
	j.deadLetter = err == nil
}

// backoff is the delay before the next attempt after attempt n (1-based): exponential from the
// base delay, doubling up to the maximum, with full jitter; a Retry-After wins, capped too.
func (h *Handler) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, h.Config.RetryMaxDelay)
	}
	return backoff.Policy{Base: h.Config.RetryBaseDelay, Max: h.Config.RetryMaxDelay, Jitter: h.Jitter}.Delay(n)
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
