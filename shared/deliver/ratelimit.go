package deliver

import (
	"context"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/ratelimit"
	"github.com/pushfn/pushfn/shared/store"
)

// Limiter hands out the send slots of rate-limited endpoints; *ratelimit.Limiter is the real one.
type Limiter interface {
	Take(ctx context.Context, endpointID string, rate int, now time.Time) (ratelimit.Slot, error)
}

var _ Limiter = (*ratelimit.Limiter)(nil)

// MaxSlotWait is the longest a record waits in the function for its slot to start; a later slot
// is waited for in the queue. A copy queued to wait is delayed to arrive slotLead before its
// slot starts: SQS delays are whole seconds, and the event source mapping's batching window
// (1 s in the template) and polling add their own, so a copy aimed at the slot's start would
// often arrive past the slot's end and lose it. In the end-to-end test of an endpoint limited
// to 5/s (300 events), aiming at the start (then waiting at most 1 s) delivered 2 a second
// where 5 were allowed, most slots lost that way; see the README's rate limit notes.
const (
	MaxSlotWait = 3 * time.Second
	slotLead    = 2 * time.Second
)

// awaitSlot gives j's message, to an endpoint with a rate limit, a send slot, and reports
// whether j may go on to its claim with the slot started. A slot that starts within MaxSlotWait
// (and the item's budget) is waited for here. A later one is waited for in the queue: a copy
// of the envelope carrying the slot is queued with a delay of the whole seconds until it starts,
// and j is acknowledged once that copy is queued; a copy whose slot it still holds uses it. So
// records of a busy endpoint are never handed back to wait (which would spend their receives)
// and no attempt is counted before a send can start.
//
// A carried slot is used only on the copy's first receive: a copy received again (handed back
// after its send, say) may have used it already.
//
// The wait is not taken from the claim's and the send's time: after it, they run under a context
// of their own (see deliver), within inv, the invocation, whose deadline must leave them that
// time after the wait.
func (h *Handler) awaitSlot(inv, ctx context.Context, j *job) bool {
	rate := j.ep.RatePerSecond
	if rate == 0 || h.Limiter == nil {
		return true
	}
	now := h.now()
	slot := ratelimit.Slot{N: j.env.Slot, Rate: j.env.SlotRate}
	if slot.Rate != rate || receives(j.msg) > 1 || !slot.Usable(now) {
		var err error
		if slot, err = h.Limiter.Take(ctx, j.env.EndpointID, rate, now); err != nil {
			h.dependencyFailed(j)
			h.log().ErrorContext(ctx, "no rate limit slot", "message_id", j.env.ID, "endpoint_id", j.env.EndpointID, "error", err.Error())
			return false
		}
	}
	wait := slot.Start().Sub(now)
	fits := wait <= MaxSlotWait
	if d, ok := inv.Deadline(); ok && time.Until(d)-h.margin() < wait+h.Config.RequestTimeout+h.storeBudget() {
		fits = false // the claim and the send would not have their time after the wait
	}
	if !fits {
		h.requeue(ctx, j, slot, now)
		return false
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			j.verdict, j.delay = handBack, 0
			return false
		}
	}
	j.slot = slot
	return true
}

// requeue queues a copy of j's envelope holding slot, to arrive slotLead before the slot starts
// (at most queue.MaxDelaySeconds later; a copy arriving early is queued again), and acknowledges j once
// it is queued. When it is not, j is handed back as after a dependency failure.
func (h *Handler) requeue(ctx context.Context, j *job, slot ratelimit.Slot, now time.Time) {
	env := j.env
	env.Slot, env.SlotRate = slot.N, slot.Rate
	// The payload's bytes as accepted: encoding/json would compact them and escape <, > and &.
	body, err := message.EncodeEnvelope(env)
	if err == nil && h.Producer == nil {
		err = fmt.Errorf("no producer configured")
	}
	delay := min(int((slot.Start().Sub(now)-slotLead)/time.Second), queue.MaxDelaySeconds)
	if err == nil {
		err = h.Producer.Send(ctx, []queue.Entry{{Body: string(body), DelaySeconds: delay}})[0]
	}
	if err != nil {
		h.dependencyFailed(j)
		h.log().ErrorContext(ctx, "rate limited copy not queued", "message_id", j.env.ID, "endpoint_id", j.env.EndpointID, "error", err.Error())
		return
	}
	j.verdict = ack
	h.log().InfoContext(ctx, "rate limited, queued to wait for its slot", "message_id", j.env.ID, "endpoint_id", j.env.EndpointID,
		"target_host", j.host, "slot", slot.N, "delay_s", delay)
}

// slotMissed ends the claim of j's message whose slot passed while the claim was written: the
// send would have counted in a later second, so it is not made. The record says so and the
// copy is handed back at once, to take a new slot: a retry as after a failed attempt, the last
// attempt's rules included.
func (h *Handler) slotMissed(writes context.Context, j *job, attempts int, token string) {
	now := h.now()
	o := store.Outcome{Now: now, Token: token, Status: message.Retrying,
		Attempt: &message.Attempt{At: now, Error: "not sent: its rate limit slot passed while the claim was written"}}
	switch {
	case attempts >= h.Config.MaxAttempts:
		o.Status = message.Failed
	case h.lastReceive(j.msg):
		o.Status, j.deadLetter = message.Failed, true
		o.Attempt.Error = message.ReasonDeadLettered + ": " + o.Attempt.Error
	}
	h.finish(writes, j, attempts, o, 0)
	if j.verdict == handBack && !j.deadLetter {
		j.delay = 0
	}
}
