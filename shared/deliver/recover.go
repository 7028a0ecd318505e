package deliver

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/opevent"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// Listing lists an endpoint's deliveries, the candidates of a recovery; store.Deliveries has it.
type Listing interface {
	ListDeliveries(ctx context.Context, q store.DeliveryQuery) (store.DeliveryPage, error)
}

var _ Listing = store.Deliveries(nil)

// reopenConcurrency bounds the reopen writes of a recovery's page in flight at once.
const reopenConcurrency = 16

// recoveryKey is the runner's key of every recovery in a batch, as fanoutKey is of expansions.
const recoveryKey = "recovery"

// checkRecovery returns why env is not a well-formed recovery copy, or nil.
func checkRecovery(env message.Envelope) error {
	switch {
	case !message.ValidEndpointID(env.EndpointID):
		return errors.New("endpoint id is not one pushfn issues")
	case env.Since == nil || env.Until == nil:
		return errors.New("no window (since and until)")
	case env.Fingerprint == "":
		return errors.New("no fingerprint")
	case env.Target.URL != "" || env.EventType != "" || env.MessageID != "":
		return errors.New("a recovery beside another destination")
	}
	return nil
}

// recoverWindow runs the recovery j carries: every delivery to its endpoint created in its
// window that ended failed is reopened and its kept copy queued again, a page of the endpoint's
// deliveries at a time, paced to the endpoint's rate limit. Like a fan-out's expansion, it holds
// the recovery's record under a lease and checkpoints after each page its position and counts
// (matched: failed deliveries found; requeued: those queued again), so a worker that dies
// mid-way is taken over from the last checkpoint. The page in flight is read again: the
// deliveries it had reopened are no longer failed, but carry this recovery's id as their reopen
// token, so they are counted again as its own, and those still waiting are queued again (their
// claim lets one copy through). No delivery is skipped or counted twice.
func (h *Handler) recoverWindow(inv, writes context.Context, j *job, token string) {
	log := h.log()
	id := j.env.ID
	now := h.now()
	if h.Producer == nil || h.Listing == nil || h.Endpoints == nil {
		h.dependencyFailed(j)
		log.ErrorContext(writes, "recovery not run: no queue producer, deliveries listing or endpoints configured", "recovery_id", id)
		return
	}
	rec, err := h.Store.Claim(writes, id, store.Claim{Now: now, Lease: h.lease(inv), Token: token, Fingerprint: j.env.Fingerprint})
	if h.refused(writes, j, err, now) {
		return
	}
	p := store.Progress{Token: token, Cursor: rec.FanoutCursor, Deliveries: rec.FanoutDeliveries, Matched: rec.Matched}
	if rec.Attempts > h.Config.MaxAttempts {
		h.finish(writes, j, rec.Attempts, store.Outcome{Now: now, Status: message.Failed, Token: token,
			Attempt: &message.Attempt{At: now, Error: "attempts exhausted"}, Fanout: &p}, 0)
		return
	}
	rate := 0
	switch ep, err := h.Endpoints.Get(writes, j.env.EndpointID); {
	case err == nil:
		rate = ep.RatePerSecond
	case !errors.Is(err, store.ErrEndpointNotFound):
		// Its deliveries would end endpoint_deleted: recovered or not, nothing to pace.
		h.pauseExpansion(writes, j, p, "reading the endpoint failed: "+err.Error(), false)
		return
	}
	for {
		if d, ok := writes.Deadline(); ok && time.Until(d) < expandPageTime {
			h.pauseExpansion(writes, j, p, "the invocation's deadline is near", true)
			return
		}
		if wait := h.feedWait(rec.CreatedAt, p.Deliveries+store.MaxListLimit, rate); wait > 0 {
			h.pauseRecovery(writes, j, p, wait)
			return
		}
		page, err := h.Listing.ListDeliveries(writes, store.DeliveryQuery{EndpointID: j.env.EndpointID, Since: *j.env.Since,
			Until: *j.env.Until, Limit: store.MaxListLimit, Cursor: p.Cursor})
		if errors.Is(err, store.ErrCursor) {
			h.finish(writes, j, rec.Attempts, store.Outcome{Now: h.now(), Status: message.Failed, Token: token,
				Attempt: &message.Attempt{At: now, Error: "recovery checkpoint refused: " + err.Error()}, Fanout: &p}, 0)
			return
		}
		if err != nil {
			h.pauseExpansion(writes, j, p, "listing deliveries failed: "+err.Error(), false)
			return
		}
		// The page's failed deliveries, and those this recovery reopened before (a worker that
		// died mid-page), are reopened at once, a few at a time.
		var picked []message.Record
		for _, d := range page.Records {
			if d.Status == message.Failed || d.ReopenToken == id {
				picked = append(picked, d)
			}
		}
		reopened := make([]message.Record, len(picked))
		errs := make([]error, len(picked))
		var g errgroup.Group
		g.SetLimit(reopenConcurrency)
		for i, d := range picked {
			g.Go(func() error {
				reopened[i], errs[i] = h.Store.Reopen(writes, d.ID, store.Reopen{Now: h.now(), Token: id})
				return nil
			})
		}
		_ = g.Wait()
		var entries []queue.Entry
		matched, requeued := 0, 0
		for i, d := range picked {
			mine := d.ReopenToken == id
			matched++
			r, err := reopened[i], errs[i]
			switch {
			case err == nil:
			case errors.Is(err, store.ErrDelivered), errors.Is(err, store.ErrNotFinal):
				// Queued again by this recovery before (delivered since, or on its way), or by a
				// retry of its own; either way not failed any more.
				if mine {
					requeued++
				}
				continue
			case errors.Is(err, store.ErrNoCopy), errors.Is(err, store.ErrNotFound):
				log.WarnContext(writes, "recovery: delivery has no copy kept, not queued", "recovery_id", id, "message_id", d.ID)
				continue
			default:
				h.pauseExpansion(writes, j, p, "reopening a delivery failed: "+err.Error(), false)
				return
			}
			if r.Status != message.Accepted {
				requeued++
				continue
			}
			entries = append(entries, queue.Entry{Body: string(r.Copy),
				DelaySeconds: h.feedDelay(rec.CreatedAt, p.Deliveries+requeued, rate)})
			requeued++
		}
		if err := errors.Join(h.Producer.Send(writes, entries)...); err != nil {
			h.pauseExpansion(writes, j, p, "queueing deliveries failed: "+err.Error(), false)
			return
		}
		p.Cursor, p.Deliveries, p.Matched = page.Next, p.Deliveries+requeued, p.Matched+matched
		if p.Cursor == "" {
			end := h.now()
			h.finish(writes, j, rec.Attempts, store.Outcome{Now: end, Status: message.Delivered, Token: token,
				Attempt: &message.Attempt{At: now, DurationMS: end.Sub(now).Milliseconds()}, Fanout: &p}, 0)
			log.InfoContext(writes, "recovery finished", "recovery_id", id, "endpoint_id", j.env.EndpointID, "matched", p.Matched, "requeued", p.Deliveries)
			if j.verdict == ack && h.Events != nil {
				// Its end recorded (a finish that failed hands the copy back, to end it again).
				h.Events.Publish(opevent.Event{DetailType: opevent.RecoveryFinished, Time: end, Detail: opevent.RecoveryEnd{
					RecoveryID: id, EndpointID: j.env.EndpointID, Matched: p.Matched, Requeued: p.Deliveries}})
			}
			return
		}
		p.Now = h.now()
		if _, err := h.Store.Checkpoint(writes, id, p); err != nil {
			h.expansionLost(writes, j, err)
			return
		}
	}
}

// feedDelay is the delay of the copy a recovery begun at start queues k-th (from 0), so that it
// feeds the queue no faster than rate copies a second (rate 0: no limit): copy k is due k / rate
// seconds after start.
func (h *Handler) feedDelay(start time.Time, k, rate int) int {
	if rate <= 0 {
		return 0
	}
	due := start.Add(time.Duration(k) * time.Second / time.Duration(rate))
	return min(max(int(due.Sub(h.now())/time.Second), 0), queue.MaxDelaySeconds)
}

// feedWait is how long a recovery begun at start must wait before it may queue its k-th copy
// within SQS's longest delay: 0 when that copy's delay fits.
func (h *Handler) feedWait(start time.Time, k, rate int) time.Duration {
	if rate <= 0 {
		return 0
	}
	due := start.Add(time.Duration(k) * time.Second / time.Duration(rate))
	return max(due.Sub(h.now())-queue.MaxDelaySeconds*time.Second, 0)
}

// pauseRecovery stops j's recovery at p for wait, its copies queued ahead as far as SQS's
// delays reach: it releases its lease and queues a new copy of itself delayed by wait (at most
// SQS's longest delay), and acknowledges j once that copy is queued. A new copy, not j handed
// back with a visibility delay: a long recovery would otherwise spend j's receives and send it
// to the dead-letter queue.
func (h *Handler) pauseRecovery(ctx context.Context, j *job, p store.Progress, wait time.Duration) {
	p.Now, p.Release = h.now(), true
	if _, err := h.Store.Checkpoint(ctx, j.env.ID, p); err != nil {
		h.expansionLost(ctx, j, err)
		return
	}
	delay := min(int(wait/time.Second)+1, queue.MaxDelaySeconds)
	if err := h.Producer.Send(ctx, []queue.Entry{{Body: j.msg.Body, DelaySeconds: delay}})[0]; err != nil {
		h.dependencyFailed(j)
		h.log().ErrorContext(ctx, "recovery: its paused copy not queued", "recovery_id", j.env.ID, "error", err.Error())
		return
	}
	j.verdict = ack
	h.log().InfoContext(ctx, "recovery paused to keep to the endpoint's rate limit", "recovery_id", j.env.ID, "requeued", p.Deliveries, "delay_s", delay)
}
