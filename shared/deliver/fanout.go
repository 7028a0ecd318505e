package deliver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// Subscribers lists the endpoints of a tenant, the candidates of a fan-out; store.Endpoints
// has it.
type Subscribers interface {
	ListEndpoints(ctx context.Context, q store.EndpointQuery) (store.EndpointPage, error)
}

var _ Subscribers = store.Endpoints(nil)

// NewSubscriberCache returns l with the first page of each tenant's listing kept for
// endpoint.DefaultCacheTTL, as endpoints are: a warm function fanning out to a tenant of at most
// store.MaxListLimit endpoints again and again reads its listing once per TTL, not once per
// message. A fan-out may so miss an endpoint created, or see one changed, within the TTL before
// it, as a delivery may see an endpoint's settings that old. Later pages are read each time.
func NewSubscriberCache(l Subscribers) Subscribers {
	return &subscriberCache{next: l, firstPages: endpoint.Cache[store.EndpointPage]{
		Load: func(ctx context.Context, tenant string) (store.EndpointPage, error) {
			return l.ListEndpoints(ctx, store.EndpointQuery{TenantID: &tenant, Limit: store.MaxListLimit})
		},
	}}
}

type subscriberCache struct {
	next       Subscribers
	firstPages endpoint.Cache[store.EndpointPage]
}

// ListEndpoints implements Subscribers.
func (c *subscriberCache) ListEndpoints(ctx context.Context, q store.EndpointQuery) (store.EndpointPage, error) {
	if q.Cursor != "" || q.TenantID == nil || q.Limit != store.MaxListLimit {
		return c.next.ListEndpoints(ctx, q)
	}
	return c.firstPages.Get(ctx, *q.TenantID)
}

// fanoutKey is the runner's key of every expansion in a batch: they share one per-host limit,
// which bounds the expansions (and their copies' bodies) in memory at once.
const fanoutKey = "fanout"

// expandPageTime is kept free before the invocation's deadline (less the margin) to expand one
// more page of endpoints: a page read, its copies queued, the checkpoint written. Less than
// that, and the expansion stops where it is, for the next receive of its copy to go on.
const expandPageTime = 5 * time.Second

// checkExpansion returns why env is not a well-formed fan-out copy, or nil.
func checkExpansion(env message.Envelope) error {
	switch {
	case env.Target.URL != "" || env.Target.Headers != nil || env.EndpointID != "":
		return errors.New("an event type beside a target or an endpoint id")
	case message.CheckEventType(env.EventType) != "":
		return fmt.Errorf("event type %s", message.CheckEventType(env.EventType))
	case env.TenantID != "" && message.CheckTenantID(env.TenantID) != "":
		return fmt.Errorf("tenant id %s", message.CheckTenantID(env.TenantID))
	case len(env.Payload) == 0 || string(env.Payload) == "null":
		return errors.New("no payload")
	case env.Fingerprint == "":
		return errors.New("no fingerprint")
	}
	return nil
}

// checkDelivery returns why env is not a well-formed copy of one delivery of a fan-out, or nil.
func checkDelivery(env message.Envelope) error {
	switch {
	case !message.ValidID(env.MessageID):
		return errors.New("no valid message id")
	case !message.ValidEndpointID(env.EndpointID):
		return errors.New("endpoint id is not one pushfn issues")
	case env.ID != message.DeliveryID(env.MessageID, env.EndpointID):
		return errors.New("delivery id is not its message's and endpoint's")
	case env.CreatedAt == nil:
		return errors.New("no created_at")
	case env.Fingerprint == "":
		return errors.New("no fingerprint")
	}
	return nil
}

// newRecord is the record of j's delivery, which its first claim or finish makes (store.Claim's
// New); nil for every other copy, whose record the api made.
func (h *Handler) newRecord(j *job) *message.Record {
	env := j.env
	if env.MessageID == "" || j.bad != nil {
		return nil
	}
	rec := &message.Record{MessageID: env.MessageID, EndpointID: env.EndpointID, Fingerprint: env.Fingerprint,
		CreatedAt: *env.CreatedAt, ExpiresAt: env.ExpiresAt}
	if j.ep != nil && j.ep.Parsed != nil {
		rec.TargetHost = j.host
	}
	return rec
}

// expand runs the expansion of j's fan-out message: one delivery copy queued for every endpoint
// of the tenant subscribed to the event type, a page of endpoints at a time. It claims the
// message's record first, so that a message whose record the api removed (its answer was 503)
// fans out to no one, and only one worker expands it at a time. After each page it checkpoints
// under that lease where the listing goes on and how many copies were queued: a worker that
// dies mid-way leaves the lease to run out, and the next receive of the copy goes on from the
// last checkpoint. The page in flight when it died is queued again; each of its deliveries has
// one record (its id is derived from the message and the endpoint) whose claim lets one copy
// through, so no endpoint receives the message twice and none is skipped. The expansion ends by
// recording the message delivered with its number of deliveries: zero when no endpoint matched.
//
// Its store and queue calls run under writes (the invocation's deadline less the margin), not
// a push's timeout: a large fan-out uses the whole invocation, and stops a page's time short
// of it, releasing its lease so that the next receive goes on at once.
func (h *Handler) expand(inv, writes context.Context, j *job, token string) {
	log := h.log()
	id := j.env.ID
	now := h.now()
	if h.Producer == nil || h.Subscribers == nil {
		h.dependencyFailed(j)
		log.ErrorContext(writes, "fan-out not expanded: no queue producer or endpoint listing configured", "message_id", id)
		return
	}
	rec, err := h.Store.Claim(writes, id, store.Claim{Now: now, Lease: h.lease(inv), Token: token, Fingerprint: j.env.Fingerprint})
	if h.refused(writes, j, err, now) {
		return
	}
	if rec.Attempts > h.Config.MaxAttempts {
		// Earlier workers claimed it and died mid-way, too often: what they queued goes on.
		h.finish(writes, j, rec.Attempts, store.Outcome{Now: now, Status: message.Failed, Token: token,
			Attempt: &message.Attempt{At: now, Error: "attempts exhausted"},
			Fanout:  &store.Progress{Cursor: rec.FanoutCursor, Deliveries: rec.FanoutDeliveries}}, 0)
		return
	}
	tenant := j.env.TenantID
	p := store.Progress{Token: token, Cursor: rec.FanoutCursor, Deliveries: rec.FanoutDeliveries}
	for {
		if d, ok := writes.Deadline(); ok && time.Until(d) < expandPageTime {
			h.pauseExpansion(writes, j, p, "the invocation's deadline is near", true)
			return
		}
		page, err := h.Subscribers.ListEndpoints(writes, store.EndpointQuery{TenantID: &tenant, Limit: store.MaxListLimit, Cursor: p.Cursor})
		if errors.Is(err, store.ErrCursor) {
			// A checkpoint this function wrote, refused by the store: nothing will read past it.
			h.finish(writes, j, rec.Attempts, store.Outcome{Now: h.now(), Status: message.Failed, Token: token,
				Attempt: &message.Attempt{At: now, Error: "fan-out checkpoint refused: " + err.Error()}, Fanout: &p}, 0)
			return
		}
		if err != nil {
			h.pauseExpansion(writes, j, p, "listing endpoints failed: "+err.Error(), false)
			return
		}
		entries, err := h.deliveryCopies(j, rec, page.Endpoints)
		if err != nil {
			h.pauseExpansion(writes, j, p, err.Error(), false)
			return
		}
		if err := errors.Join(h.Producer.Send(writes, entries)...); err != nil {
			h.pauseExpansion(writes, j, p, "queueing deliveries failed: "+err.Error(), false)
			return
		}
		p.Cursor, p.Deliveries = page.Next, p.Deliveries+len(entries)
		if p.Cursor == "" {
			// The attempt is this expansion's: when it began and how long it took.
			end := h.now()
			h.finish(writes, j, rec.Attempts, store.Outcome{Now: end, Status: message.Delivered, Token: token,
				Attempt: &message.Attempt{At: now, DurationMS: end.Sub(now).Milliseconds()}, Fanout: &p}, 0)
			log.InfoContext(writes, "fan-out expanded", "message_id", id, "event_type", j.env.EventType, "deliveries", p.Deliveries)
			return
		}
		p.Now = h.now()
		if _, err := h.Store.Checkpoint(writes, id, p); err != nil {
			h.expansionLost(writes, j, err)
			return
		}
	}
}

// deliveryCopies returns the copies of the deliveries of j's message to the endpoints of eps
// subscribed to its event type. rec is the message's record.
func (h *Handler) deliveryCopies(j *job, rec message.Record, eps []endpoint.Record) ([]queue.Entry, error) {
	var entries []queue.Entry
	created := rec.CreatedAt
	for _, ep := range eps {
		if !ep.Subscribed(j.env.EventType) {
			continue
		}
		env := message.Envelope{ID: message.DeliveryID(j.env.ID, ep.ID), MessageID: j.env.ID, EndpointID: ep.ID, CreatedAt: &created,
			Payload: j.env.Payload, ExpiresAt: j.env.ExpiresAt, Fingerprint: j.env.Fingerprint}
		body, err := message.EncodeEnvelope(env)
		if err != nil {
			return nil, err
		}
		entries = append(entries, queue.Entry{Body: string(body)})
	}
	return entries, nil
}

// pauseExpansion stops j's expansion (or recovery) at p, releasing its lease, and hands the copy back: at once
// when goOn (the invocation ran out of time), else after the short delay of a dependency failure.
func (h *Handler) pauseExpansion(ctx context.Context, j *job, p store.Progress, why string, goOn bool) {
	p.Now, p.Release = h.now(), true
	_, err := h.Store.Checkpoint(ctx, j.env.ID, p)
	switch {
	case err != nil && conflict(err):
		h.expansionLost(ctx, j, err)
		return
	case goOn && err == nil:
		j.verdict, j.delay = handBack, 0
	default:
		h.dependencyFailed(j)
	}
	lvl := h.log().InfoContext
	if j.delay > 0 {
		lvl = h.log().WarnContext
	}
	lvl(ctx, "paused at its checkpoint", "message_id", j.env.ID, "deliveries", p.Deliveries, "reason", why, "visible_in_ms", j.delay.Milliseconds())
}

// expansionLost sets j's verdict after a checkpoint found the lease gone (it ran out and another
// worker took the expansion over, which goes on from the last checkpoint), or failed.
func (h *Handler) expansionLost(ctx context.Context, j *job, err error) {
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		h.handBackFor(j, ce.Record, h.now())
		h.log().WarnContext(ctx, "fan-out lease lost", "message_id", j.env.ID, "record_status", ce.Record.Status)
		return
	}
	h.dependencyFailed(j)
	h.log().ErrorContext(ctx, "fan-out checkpoint failed", "message_id", j.env.ID, "error", err.Error())
}
