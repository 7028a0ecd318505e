package deliver

import (
	"cmp"
	"context"
	"strconv"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/opevent"
	"github.com/pushfn/pushfn/shared/store"
)

// Events takes the handler's operational events during an invocation and sends them at its
// end; *opevent.Batcher is the real one.
type Events interface {
	opevent.Publisher
	Flush(ctx context.Context)
}

var _ Events = (*opevent.Batcher)(nil)

// flushBudget bounds the flush of an invocation without a deadline (tests, benchmarks).
const flushBudget = 5 * time.Second

// ended notes o's status, which the write recorded, for the invocation's metrics, and publishes
// a DeliveryFailed event when o ended j's record failed: rec is the record as the write left it,
// attempts its attempts when the caller knows them better (a claim's count), else 0.
func (h *Handler) ended(j *job, rec message.Record, o store.Outcome, attempts int) {
	j.outcome = o.Status
	if h.Events == nil || o.Status != message.Failed || message.ValidRecoveryID(j.env.ID) {
		// A recovery's record is no delivery: its end is a RecoveryFinished event.
		return
	}
	d := opevent.DeliveryFailure{
		MessageID: cmp.Or(j.env.MessageID, j.env.ID), EndpointID: cmp.Or(j.env.EndpointID, rec.EndpointID),
		TargetHost: cmp.Or(rec.TargetHost, targetHost(j)), Attempts: cmp.Or(attempts, rec.Attempts),
	}
	if j.env.MessageID != "" {
		d.DeliveryID = j.env.ID
	}
	if a := o.Attempt; a != nil {
		d.Reason = a.Error
		if d.Reason == "" && a.StatusCode != 0 {
			d.Reason = "status " + strconv.Itoa(a.StatusCode)
		}
	}
	h.Events.Publish(opevent.Event{DetailType: opevent.DeliveryFailed, Detail: d, Time: o.Now})
}

// targetHost is the host j's message was to go to, when it is known: not for a fan-out's
// expansion, nor for an endpoint that could not be read.
func targetHost(j *job) string {
	switch {
	case j.url != nil:
		return j.host
	case j.ep != nil:
		return j.ep.Host
	}
	return ""
}

// flushEvents sends the invocation's operational events, within its deadline less half the
// margin: the rest is the response's.
func (h *Handler) flushEvents(inv context.Context) {
	if h.Events == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(inv), flushBudget)
	if d, ok := inv.Deadline(); ok {
		cancel()
		ctx, cancel = context.WithDeadline(context.WithoutCancel(inv), d.Add(-h.margin()/2))
	}
	defer cancel()
	h.Events.Flush(ctx)
}

// healthEvents hands the events of endpoint health (an endpoint disabled) to the handler's
// publisher, which the end of the invocation flushes.
type healthEvents struct{ to opevent.Publisher }

// Publish implements Publisher.
func (p healthEvents) Publish(e OpEvent) { p.to.Publish(opevent.Event(e)) }

var _ Publisher = healthEvents{}
