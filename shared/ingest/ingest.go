// Package ingest accepts validated messages for delivery, for both front doors (the HTTP API and
// the event relay): record each one with a conditional write, then queue them all in one batched
// send (record before queue), with idempotency-key replays told apart from reuse.
//
// Ships in the api and relay functions.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// Store is the part of store.Store that ingest writes with.
type Store interface {
	// Create writes rec if no record has its id, else returns a *store.ConflictError wrapping
	// store.ErrExists that carries the existing record.
	Create(ctx context.Context, rec message.Record) error
	// Delete removes a record that is still accepted.
	Delete(ctx context.Context, id string) error
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
	// ErrInProgress: the key's message was recorded moments ago and may still be being queued by
	// another request; retry after Result.RetryAfter (409).
	ErrInProgress = errors.New("a request with this idempotency key is in progress")
	// ErrUnavailable: the table or the queue failed; nothing was kept, retry later (503).
	ErrUnavailable = errors.New("a dependency is unavailable")
)

// DefaultSettle is how long after its creation a record still in accepted is presumed to belong
// to a request still in flight: at least the api (29 s) and relay (60 s) functions' timeouts.
const DefaultSettle = 60 * time.Second

// createConcurrency bounds the conditional writes in flight for one call.
const createConcurrency = 16

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
	Logger   *slog.Logger     // nil means slog.Default()
	Now      func() time.Time // nil means time.Now
	Settle   time.Duration    // 0 means DefaultSettle
}

// retryUnavailable is the Retry-After suggested when a dependency failed.
const retryUnavailable = 2 * time.Second

// pending is a message waiting for the queue.
type pending struct {
	index int
	fresh bool // created by this call, so removed again if it cannot be queued
	entry queue.Entry
}

// Enqueue accepts msgs, which must have passed message validation, and returns one Result per
// message in order. Each message is recorded with a conditional create (its id derived from its
// idempotency key, or new) and all of them are queued with one Producer.Send. A replay of a key
// whose record is still accepted is queued again, since its first send may have been lost;
// delivery deduplicates. A message that could not be queued has its record removed again.
func (e *Enqueuer) Enqueue(ctx context.Context, msgs []message.Message) []Result {
	now := e.now()
	results := make([]Result, len(msgs))
	toSend := make([]*pending, len(msgs))
	e.parallel(len(msgs), func(i int) {
		defer func() {
			if v := recover(); v != nil {
				e.logger().ErrorContext(ctx, "record message panicked", "panic", v)
				results[i], toSend[i] = Result{IdempotencyKey: msgs[i].IdempotencyKey, Err: fmt.Errorf("record message: panic: %v", v)}, nil
			}
		}()
		results[i], toSend[i] = e.create(ctx, msgs[i], now)
		if toSend[i] != nil {
			toSend[i].index = i
		}
	})

	var batch []*pending
	for _, p := range toSend {
		if p != nil {
			batch = append(batch, p)
		}
	}
	if len(batch) == 0 {
		return results
	}
	entries := make([]queue.Entry, len(batch))
	for i, p := range batch {
		entries[i] = p.entry
	}
	errs := e.Producer.Send(ctx, entries)
	if len(errs) != len(entries) {
		errs = make([]error, len(entries))
		for i := range errs {
			errs[i] = fmt.Errorf("producer returned %d outcomes for %d entries", len(errs), len(entries))
		}
	}
	var undo []*pending
	for i, p := range batch {
		if errs[i] == nil {
			continue
		}
		r := &results[p.index]
		e.logger().WarnContext(ctx, "queue message", "message_id", r.ID, "error", errs[i])
		r.Replayed = false
		if errors.Is(errs[i], queue.ErrPermanent) {
			// The queue refused the entry itself (too large, say): a retry cannot succeed.
			r.Err = fmt.Errorf("queue %s: %w", r.ID, errs[i])
		} else {
			r.Err = fmt.Errorf("queue %s: %w: %w", r.ID, ErrUnavailable, errs[i])
			r.RetryAfter = retryUnavailable
		}
		if p.fresh {
			undo = append(undo, p)
		}
	}
	if len(undo) > 0 {
		// The caller is told to retry; the record must not stay behind as if queued. The
		// original context may be spent by now, so the undo gets its own short one.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		e.parallel(len(undo), func(i int) {
			id := results[undo[i].index].ID
			if err := e.Store.Delete(dctx, id); err != nil {
				e.logger().WarnContext(ctx, "remove unqueued record", "message_id", id, "error", err)
			}
		})
	}
	return results
}

// create records one message and says what to queue for it, if anything.
func (e *Enqueuer) create(ctx context.Context, m message.Message, now time.Time) (Result, *pending) {
	res := Result{IdempotencyKey: m.IdempotencyKey}
	if m.IdempotencyKey != "" {
		res.ID = message.IDForKey(m.IdempotencyKey)
	} else {
		res.ID = message.NewID(now)
	}
	fp, err := message.Fingerprint(m)
	if err != nil {
		// Validation makes this unreachable; refuse rather than record a message that cannot be
		// told apart from others.
		res.Err = fmt.Errorf("message %s: %w", res.ID, err)
		return res, nil
	}
	rec := message.Record{
		ID:             res.ID,
		Status:         message.Accepted,
		Fingerprint:    fp,
		IdempotencyKey: m.IdempotencyKey,
		TargetHost:     message.TargetHost(m.Target.URL),
		CreatedAt:      now,
		UpdatedAt:      now,
		ExpiresAt:      m.ExpiresAt,
	}
	err = e.Store.Create(ctx, rec)
	var conflict *store.ConflictError
	switch {
	case err == nil:
		res.Status = message.Accepted
		return e.entry(res, true, m, m.ExpiresAt, fp)
	case errors.As(err, &conflict) && errors.Is(err, store.ErrExists):
		// handled below
	default:
		e.logger().WarnContext(ctx, "record message", "message_id", res.ID, "error", err)
		res.Err = fmt.Errorf("record %s: %w: %w", res.ID, ErrUnavailable, err)
		res.RetryAfter = retryUnavailable
		return res, nil
	}

	old := conflict.Record
	if old.Fingerprint != fp {
		res.Err = fmt.Errorf("message %s: %w", res.ID, ErrKeyReused)
		return res, nil
	}
	res.Status, res.Replayed = old.Status, true
	if old.Status != message.Accepted {
		return res, nil
	}
	if age := now.Sub(old.UpdatedAt); age < e.settle() {
		res.Err = fmt.Errorf("message %s: %w", res.ID, ErrInProgress)
		res.RetryAfter = max(e.settle()-age, time.Second)
		res.Replayed = false
		return res, nil
	}
	return e.entry(res, false, m, old.ExpiresAt, old.Fingerprint)
}

// entry builds the queue entry for res: the message's envelope.
func (e *Enqueuer) entry(res Result, fresh bool, m message.Message, expires *time.Time, fingerprint string) (Result, *pending) {
	env := message.Envelope{ID: res.ID, Target: m.Target, Payload: m.Payload, ExpiresAt: expires, Fingerprint: fingerprint}
	body, err := message.EncodeEnvelope(env)
	if err != nil {
		// Unreachable for a validated message.
		res.Err = err
		return res, nil
	}
	return res, &pending{fresh: fresh, entry: queue.Entry{Body: string(body), DelaySeconds: m.DelaySeconds}}
}

// parallel runs fn(0..n-1) with at most createConcurrency calls at once and waits for them.
func (e *Enqueuer) parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, createConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

func (e *Enqueuer) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Enqueuer) settle() time.Duration {
	if e.Settle > 0 {
		return e.Settle
	}
	return DefaultSettle
}

func (e *Enqueuer) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}
