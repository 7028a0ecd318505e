// Package ingest accepts validated messages for delivery, for both front doors (the HTTP API and
// the event relay): record each one with a conditional write, then queue them all in one batched
// send, with idempotency-key replays told apart from reuse.
//
// Ships in the api and relay functions.
package ingest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// Store is the part of store.Store that ingest writes with.
type Store interface {
	// Create writes rec if no record has its id, else returns a *store.ConflictError wrapping
	// store.ErrExists that carries the existing record; a record carrying rec's CreateToken is
	// rec's own write, and Create returns nil.
	Create(ctx context.Context, rec message.Record) error
	// Delete removes the record the create with createToken wrote while it is still accepted and
	// no replay has marked it.
	Delete(ctx context.Context, id, createToken string) error
	// MarkReplayed marks the record the create with createToken wrote as holding a replay's
	// queued copy, and returns it.
	MarkReplayed(ctx context.Context, id, createToken string, now time.Time) (message.Record, error)
	// Get reads the record with id, or returns an error wrapping store.ErrNotFound.
	Get(ctx context.Context, id string) (message.Record, error)
}

// Producer queues entries. Send returns one error per entry, in order; nil means queued.
// queue.Producer implements it.
type Producer interface {
	Send(ctx context.Context, entries []queue.Entry) []error
}

var (
	_ Store    = (*store.DynamoDB)(nil)
	_ Store    = (*store.Memory)(nil)
	_ Producer = (*queue.Producer)(nil)
)

// Errors a Result may carry; test them with errors.Is.
var (
	// ErrKeyReused: the idempotency key was used before for a different message (422).
	ErrKeyReused = errors.New("idempotency key reused with a different message")
	// ErrInProgress: other requests with the same key removed and recorded the message again
	// under this one on every try, so it could not settle; retry after Result.RetryAfter (409).
	ErrInProgress = errors.New("a request with this idempotency key is in progress")
	// ErrUnavailable: the table or the queue failed and the message was not accepted; retry
	// later, with the same key if any (503).
	ErrUnavailable = errors.New("a dependency is unavailable")
)

// createConcurrency bounds the store writes in flight for one call.
const createConcurrency = 16

// maxRounds bounds how often one message is recorded anew because the record its replay was
// bound to was removed under it; past it the answer is ErrInProgress.
const maxRounds = 3

// Result is the outcome for one message, at the message's index.
type Result struct {
	ID             string
	Status         message.Status // accepted for new messages; the current status for replays
	IdempotencyKey string
	Replayed       bool          // the key was seen before with the same message
	Err            error         // nil, or wraps ErrKeyReused, ErrInProgress or ErrUnavailable
	RetryAfter     time.Duration // when Err is ErrInProgress or ErrUnavailable
}

// Enqueuer records and queues messages. Its fields are set once and never changed; it is safe
// for concurrent use.
type Enqueuer struct {
	Store    Store
	Producer Producer
	// Endpoints finds the endpoints messages name; nil refuses messages to endpoints with an
	// internal error.
	Endpoints Endpoints
	Logger    *slog.Logger     // nil means slog.Default()
	Now       func() time.Time // nil means time.Now
}

// Retry-After suggestions.
const (
	retryUnavailable = 2 * time.Second
	retryInProgress  = time.Second
)

// settleTimeout bounds the writes that settle a message after its send (undo or mark). They run
// on a context of their own: the caller's may be spent by then, and the answer depends on them.
const settleTimeout = 5 * time.Second

// job is one message on its way through Enqueue.
type job struct {
	msg message.Message
	fp  string
	res *Result
	// token is the create token of the record the job's copy is bound to: its own create's when
	// fresh, else the one its replay found.
	token string
	fresh bool         // this job created the record, so it undoes the create if it cannot queue
	entry *queue.Entry // the copy to queue this round; nil when the result is settled
	again bool         // record the message anew next round
}

// Enqueue accepts msgs, which must have passed message validation, and returns one Result per
// message in order. Each message is recorded with one conditional create (its id derived from
// its idempotency key, or new); every copy to queue is sent with one Producer.Send, each bound
// to its record by the record's fingerprint.
//
// What an answer promises: a Result without Err (202, or 200 for a replay) means the message
// will be delivered or end in a final state its record shows; ErrUnavailable (503) means it
// will not be delivered unless the caller retries, and a retry with the same key delivers it
// once. The scheme that keeps this true under every interleaving of a first request, its undo,
// its replays and queue sends that fail after storing:
//
//   - The create stores a random token; a create whose answer was lost meets its own record on
//     the SDK's retry and recognises it by the token, so it is not mistaken for a replay.
//   - A first request whose send failed undoes its create, but only while the record is still
//     accepted and unmarked. If the undo finds it past accepted (a stored copy was claimed) or
//     marked (a replay queued a copy), the message will be delivered, so the answer is 202.
//   - A replay that finds the record past accepted, or marked, answers 200 at once: a copy is
//     known to be queued. One that finds it accepted and unmarked cannot know whether the first
//     request queued it (that request may still be running, have failed, or have died), so it
//     queues a copy of its own and then marks the record it saw (by its create token), which
//     stops that record's undo; the mark succeeding means the copy was stored while the record
//     existed and can no longer be removed, so it answers 200. Two replays at once both do so.
//   - If the mark finds the record removed (the first request undid it and answered 503) or
//     replaced by another create, the replay's copy may already have been acknowledged unsent,
//     so it promises nothing: the replay starts over as a new request (create, send, undo), at
//     most maxRounds times, then answers 409.
//   - A replay whose own send (or mark) fails answers 503 and leaves the record alone.
//
// Two answers cannot know everything, and say so in the README: a replay whose own send fails
// answers 503 although the first request may have answered 202 (that answer still holds); and
// when a send fails after the queue stored its copy and the undo fails too, the answer is 503
// although that copy may be delivered. Either way a retry with the same key delivers the message
// once. Closing them would need a second write on every message's happy path.
//
// The happy path stays at one store write per message and one batched send; replays cost more.
func (e *Enqueuer) Enqueue(ctx context.Context, msgs []message.Message) []Result {
	now := e.now()
	results := make([]Result, len(msgs))
	var jobs []*job
	for i, m := range msgs {
		results[i].IdempotencyKey = m.IdempotencyKey
		if m.IdempotencyKey != "" {
			results[i].ID = message.IDForKey(m.IdempotencyKey)
		} else {
			results[i].ID = message.NewID(now)
		}
		fp, err := message.Fingerprint(m)
		if err != nil {
			// Validation makes this unreachable; refuse rather than record a message that cannot
			// be told apart from others.
			results[i].Err = fmt.Errorf("message %s: %w", results[i].ID, err)
			continue
		}
		jobs = append(jobs, &job{msg: m, fp: fp, res: &results[i]})
	}
	for round := 1; len(jobs) > 0; round++ {
		if round > maxRounds {
			for _, j := range jobs {
				e.logger().WarnContext(ctx, "record replaced under every replay", "message_id", j.res.ID, "rounds", maxRounds)
				j.res.Err = fmt.Errorf("message %s: %w", j.res.ID, ErrInProgress)
				j.res.RetryAfter = retryInProgress
			}
			break
		}
		jobs = e.round(ctx, jobs, now)
	}
	return results
}

// round records jobs, queues what they must queue, settles each one's result and returns the
// jobs to record anew.
func (e *Enqueuer) round(ctx context.Context, jobs []*job, now time.Time) []*job {
	e.each(ctx, jobs, "record message", func(_ context.Context, j *job) { e.record(ctx, j, now) })
	var sending []*job
	for _, j := range jobs {
		if j.entry != nil {
			sending = append(sending, j)
		}
	}
	if len(sending) == 0 {
		return nil
	}
	entries := make([]queue.Entry, len(sending))
	for i, j := range sending {
		entries[i] = *j.entry
	}
	errs := e.Producer.Send(ctx, entries)
	if len(errs) != len(entries) {
		n := len(errs)
		errs = make([]error, len(entries))
		for i := range errs {
			errs[i] = fmt.Errorf("producer returned %d outcomes for %d entries", n, len(entries))
		}
	}
	sent := make(map[*job]error, len(sending))
	for i, j := range sending {
		sent[j] = errs[i]
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	e.each(sctx, sending, "settle message", func(sctx context.Context, j *job) { e.settle(sctx, j, sent[j], now) })
	var again []*job
	for _, j := range sending {
		if j.again {
			j.again = false
			again = append(again, j)
		}
	}
	return again
}

// record writes the job's record and sets the copy it must queue, or settles its result.
func (e *Enqueuer) record(ctx context.Context, j *job, now time.Time) {
	j.entry, j.fresh, j.token = nil, false, rand.Text()
	res := j.res
	m := j.msg
	host, err := e.endpointHost(ctx, m)
	if errors.Is(err, ErrEndpointNotFound) && m.IdempotencyKey != "" {
		// The endpoint is gone, but a record under this key may exist from before (CheckEndpoints
		// let the message through because one did): the create below finds it and answers the
		// replay, or the key's reuse, as for any message.
		host, err = "", nil
	}
	if err != nil {
		// CheckEndpoints found the endpoint a moment ago; it was deleted since, or its cached
		// answer ran out and the store could not be read.
		e.logger().WarnContext(ctx, "read endpoint", "message_id", res.ID, "endpoint_id", m.EndpointID, "error", err)
		res.Err = fmt.Errorf("message %s: %w", res.ID, err)
		if errors.Is(err, ErrUnavailable) {
			res.RetryAfter = retryUnavailable
		}
		return
	}
	rec := message.Record{
		ID:             res.ID,
		Status:         message.Accepted,
		Fingerprint:    j.fp,
		IdempotencyKey: m.IdempotencyKey,
		TargetHost:     host,
		EndpointID:     m.EndpointID,
		EventType:      m.EventType,
		TenantID:       m.TenantID,
		CreatedAt:      now,
		UpdatedAt:      now,
		ExpiresAt:      m.ExpiresAt,
		CreateToken:    j.token,
	}
	err = e.Store.Create(ctx, rec)
	var conflict *store.ConflictError
	switch {
	case err == nil:
		j.fresh = true
		e.bind(j, m.ExpiresAt)
		return
	case errors.As(err, &conflict) && errors.Is(err, store.ErrExists):
		// handled below
	default:
		e.logger().WarnContext(ctx, "record message", "message_id", res.ID, "error", err)
		res.Err = fmt.Errorf("record %s: %w: %w", res.ID, ErrUnavailable, err)
		res.RetryAfter = retryUnavailable
		return
	}

	old := conflict.Record
	if old.Fingerprint != j.fp {
		res.Err = fmt.Errorf("message %s: %w", res.ID, ErrKeyReused)
		return
	}
	if old.Status != message.Accepted || old.Replayed {
		// A copy is known to be queued (claimed already, or a replay's): nothing to do.
		res.Status, res.Replayed = old.Status, true
		return
	}
	j.token = old.CreateToken
	e.bind(j, old.ExpiresAt)
}

// bind sets the job's copy: the message's envelope, bound to its record by the fingerprint.
func (e *Enqueuer) bind(j *job, expires *time.Time) {
	m := j.msg
	env := message.Envelope{ID: j.res.ID, Target: m.Target, EndpointID: m.EndpointID, EventType: m.EventType, TenantID: m.TenantID,
		Payload: m.Payload, ExpiresAt: expires, Fingerprint: j.fp}
	body, err := message.EncodeEnvelope(env)
	if err != nil {
		// Unreachable for a validated message. A fresh record stays behind, accepted and never
		// queued, with an internal error as the answer: no promise is made for it.
		j.res.Err = err
		return
	}
	j.entry = &queue.Entry{Body: string(body), DelaySeconds: j.msg.DelaySeconds}
}

// settle sets the job's result once its copy was sent (sendErr nil) or not.
func (e *Enqueuer) settle(ctx context.Context, j *job, sendErr error, now time.Time) {
	res := j.res
	j.entry = nil
	switch {
	case j.fresh && sendErr == nil:
		res.Status = message.Accepted
	case j.fresh:
		e.undo(ctx, j, sendErr)
	case sendErr == nil:
		e.mark(ctx, j, now)
	default:
		// A replay that could not queue its copy changes nothing; the record keeps whatever
		// promise the request that created it made.
		e.unqueued(ctx, j, sendErr)
	}
}

// undo removes the record a fresh job created and could not queue, and answers accordingly.
func (e *Enqueuer) undo(ctx context.Context, j *job, sendErr error) {
	err := e.Store.Delete(ctx, j.res.ID, j.token)
	var conflict *store.ConflictError
	switch {
	case err == nil:
		e.unqueued(ctx, j, sendErr)
	case errors.As(err, &conflict):
		// Past accepted (a copy this send stored after all was claimed) or marked (a replay
		// queued a copy): the message will be delivered, so that is the answer.
		e.logger().InfoContext(ctx, "queue message failed, but a copy is queued", "message_id", j.res.ID, "status", conflict.Record.Status, "replayed", conflict.Record.Replayed, "error", sendErr)
		j.res.Status = message.Accepted
	default:
		// The record stays, accepted. Unless the failed send stored its copy after all, nothing
		// delivers it until the caller retries with the same key (its replay queues it); when
		// both the queue and the table fail at once that is all that can be known.
		e.logger().WarnContext(ctx, "remove unqueued record", "message_id", j.res.ID, "error", err)
		e.unqueued(ctx, j, sendErr)
	}
}

// mark binds a replay's queued copy to the record it saw, and answers accordingly.
func (e *Enqueuer) mark(ctx context.Context, j *job, now time.Time) {
	rec, err := e.Store.MarkReplayed(ctx, j.res.ID, j.token, now)
	switch {
	case err == nil:
		j.res.Status, j.res.Replayed = rec.Status, true
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrReplaced):
		// The record the copy was bound to was removed (its request undid it and answered 503)
		// and maybe recorded anew: the copy may have been acknowledged unsent meanwhile, so it
		// promises nothing. Start over as a new request.
		e.logger().InfoContext(ctx, "replayed record was removed; recording it anew", "message_id", j.res.ID)
		j.again = true
	default:
		e.logger().WarnContext(ctx, "mark replayed record", "message_id", j.res.ID, "error", err)
		j.res.Err = fmt.Errorf("mark %s replayed: %w: %w", j.res.ID, ErrUnavailable, err)
		j.res.RetryAfter = retryUnavailable
	}
}

// unqueued sets the result of a job whose copy could not be queued.
func (e *Enqueuer) unqueued(ctx context.Context, j *job, sendErr error) {
	r := j.res
	e.logger().WarnContext(ctx, "queue message", "message_id", r.ID, "error", sendErr)
	r.Replayed = false
	if errors.Is(sendErr, queue.ErrPermanent) {
		// The queue refused the entry itself (too large, say): a retry cannot succeed.
		r.Err = fmt.Errorf("queue %s: %w", r.ID, sendErr)
		return
	}
	r.Err = fmt.Errorf("queue %s: %w: %w", r.ID, ErrUnavailable, sendErr)
	r.RetryAfter = retryUnavailable
}

// each runs fn on every job, at most createConcurrency at once, and waits for them. A panic in
// one fails only that job's message, with an internal error.
func (e *Enqueuer) each(ctx context.Context, jobs []*job, what string, fn func(context.Context, *job)) {
	run := func(j *job) {
		defer func() {
			if v := recover(); v != nil {
				e.logger().ErrorContext(ctx, what+" panicked", "message_id", j.res.ID, "panic", v)
				j.entry, j.again = nil, false
				j.res.Replayed = false
				j.res.Err = fmt.Errorf("%s %s: panic: %v", what, j.res.ID, v)
			}
		}()
		fn(ctx, j)
	}
	if len(jobs) == 1 {
		run(jobs[0])
		return
	}
	var g errgroup.Group
	g.SetLimit(createConcurrency)
	for _, j := range jobs {
		g.Go(func() error { run(j); return nil })
	}
	_ = g.Wait() // run returns no error: each job keeps its own outcome
}

func (e *Enqueuer) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Enqueuer) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}
