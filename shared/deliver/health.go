package deliver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/store"
)

// HealthStore makes the health writes of endpoints; store.Endpoints has them. Each is one
// conditional write that applies only when the stored health is as the write expects, and
// returns the endpoint as it then is, and whether it applied.
type HealthStore interface {
	MarkEndpointFailing(ctx context.Context, id string, since time.Time) (endpoint.Record, bool, error)
	MarkEndpointHealthy(ctx context.Context, id string) (endpoint.Record, bool, error)
	DisableFailingEndpoint(ctx context.Context, id string, failingSince, at time.Time) (endpoint.Record, bool, error)
}

var _ HealthStore = store.Endpoints(nil)

// OpEvent is an operational event: something an operator may want to be told of, put on the
// events bus by a Publisher.
type OpEvent struct {
	DetailType string
	Detail     any
	Time       time.Time
}

// Publisher sends operational events on their way. Publish must not block on the bus, nor fail
// the delivery that caused the event.
type Publisher interface {
	Publish(e OpEvent)
}

// DetailTypeEndpointDisabled is the detail type of the event of an endpoint disabled because
// every attempt to it failed for ENDPOINT_DISABLE_AFTER; its detail is an EndpointDisabled.
const DetailTypeEndpointDisabled = "pushfn.endpoint.disabled"

// EndpointDisabled is the detail of a pushfn.endpoint.disabled event.
type EndpointDisabled struct {
	EndpointID   string    `json:"endpoint_id"`
	TenantID     string    `json:"tenant_id,omitempty"`
	FailingSince time.Time `json:"failing_since"`
	DisabledAt   time.Time `json:"disabled_at"`
}

// Health keeps the health of the endpoints a warm function delivers to: failing_since, set by
// the first failed attempt after a success (or ever), cleared by the first success after
// failures, and the disabling of an endpoint failing for longer than the configuration's
// EndpointDisableAfter. It writes only when an outcome contradicts what it knows of the
// endpoint's health: what the endpoint cache read, or, when newer, what its own last write (or
// a write of another function's that it met) left. Concurrent deliveries to one endpoint share
// one write. Store and Events are set once, before the first delivery; it is safe for
// concurrent use, and its memory holds one small entry per endpoint whose health it wrote (or
// tried to).
type Health struct {
	// Store makes the writes; nil tracks nothing.
	Store HealthStore
	// Events publishes the disabling of an endpoint; nil publishes nothing.
	Events Publisher

	mu      sync.Mutex
	entries map[string]*healthEntry
}

// healthEntry is what the Health knows of one endpoint beyond the cache's read.
type healthEntry struct {
	sem chan struct{} // held while a write of the endpoint's health is in flight
	// The endpoint's health at version, as a health write answered it; version 0: none known.
	version      int
	failingSince *time.Time
	disabled     bool
}

// healthState is an endpoint's health at a version.
type healthState struct {
	version      int
	failingSince *time.Time
	disabled     bool
}

func (hl *Health) entry(id string) *healthEntry {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.entries == nil {
		hl.entries = make(map[string]*healthEntry)
	}
	e := hl.entries[id]
	if e == nil {
		e = &healthEntry{sem: make(chan struct{}, 1)}
		hl.entries[id] = e
	}
	return e
}

// known is the newest of what the Health and ep (the cache's read) know of ep's health.
func (hl *Health) known(ep *Endpoint) healthState {
	hl.mu.Lock()
	e := hl.entries[ep.ID]
	hl.mu.Unlock()
	if e == nil {
		return healthState{version: ep.Version, failingSince: ep.FailingSince, disabled: ep.Disabled}
	}
	return hl.state(e, ep)
}

// state is the newest of what e and ep (the cache's read) know of the endpoint's health.
func (hl *Health) state(e *healthEntry, ep *Endpoint) healthState {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if e.version > ep.Version {
		return healthState{version: e.version, failingSince: e.failingSince, disabled: e.disabled}
	}
	return healthState{version: ep.Version, failingSince: ep.FailingSince, disabled: ep.Disabled}
}

// remember keeps rec's health in e, if it is newer than what e holds.
func (hl *Health) remember(e *healthEntry, rec endpoint.Record) {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if rec.Version > e.version {
		e.version, e.disabled = rec.Version, rec.Disabled
		e.failingSince = nil
		if rec.FailingSince != nil {
			t := *rec.FailingSince
			e.failingSince = &t
		}
	}
}

// overlay returns ep with the health this function wrote or met since the cache read it, so a
// delivery after the disabling write ends endpoint_disabled without waiting for the cache.
func (hl *Health) overlay(ep Endpoint) Endpoint {
	if hl == nil || hl.Store == nil {
		return ep
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	e := hl.entries[ep.ID]
	if e == nil || e.version <= ep.Version {
		return ep
	}
	ep.Version, ep.FailingSince, ep.Disabled = e.version, e.failingSince, ep.Disabled || e.disabled
	return ep
}

// contradicts reports whether an attempt's outcome disagrees with st, so a write is due: a
// success while failing, a failure while healthy, or a failure for longer than disableAfter.
func (st healthState) contradicts(delivered bool, now time.Time, disableAfter time.Duration) bool {
	switch {
	case delivered:
		return st.failingSince != nil
	case st.failingSince == nil:
		return true
	}
	return disableAfter > 0 && !st.disabled && now.Sub(*st.failingSince) >= disableAfter
}

// trackHealth records what an attempt to j's endpoint, made at at, says of its health, when
// that changes it. Its writes have the store budget, from ctx (the result writes' budget).
func (h *Handler) trackHealth(ctx context.Context, j *job, delivered bool, at time.Time) {
	hl, ep := h.Health, j.ep
	if hl == nil || hl.Store == nil || ep == nil || ep.ID == "" {
		return
	}
	disableAfter := h.Config.EndpointDisableAfter
	if !hl.known(ep).contradicts(delivered, h.now(), disableAfter) {
		return
	}
	e := hl.entry(ep.ID)
	ctx, cancel := context.WithTimeout(ctx, h.storeBudget())
	defer cancel()
	select {
	case e.sem <- struct{}{}:
		defer func() { <-e.sem }()
	case <-ctx.Done():
		return
	}
	// Another delivery may have written while this one waited.
	st := hl.state(e, ep)
	now := h.now()
	if !st.contradicts(delivered, now, disableAfter) {
		return
	}
	log := h.log()
	fail := func(op string, err error) {
		if !errors.Is(err, store.ErrEndpointNotFound) { // deleted: it has no health to keep
			log.WarnContext(ctx, "endpoint health not recorded", "endpoint_id", ep.ID, "op", op, "error", err.Error())
		}
	}
	if delivered {
		rec, applied, err := hl.Store.MarkEndpointHealthy(ctx, ep.ID)
		if err != nil {
			fail("healthy", err)
			return
		}
		hl.remember(e, rec)
		if applied {
			log.InfoContext(ctx, "endpoint healthy again", "endpoint_id", ep.ID, "failing_since", *st.failingSince)
		}
		return
	}
	if st.failingSince == nil {
		rec, applied, err := hl.Store.MarkEndpointFailing(ctx, ep.ID, at)
		if err != nil {
			fail("failing", err)
			return
		}
		hl.remember(e, rec)
		if applied {
			log.InfoContext(ctx, "endpoint failing", "endpoint_id", ep.ID, "failing_since", at)
		}
		if st = hl.state(e, ep); st.failingSince == nil || !st.contradicts(false, now, disableAfter) {
			return
		}
	}
	rec, applied, err := hl.Store.DisableFailingEndpoint(ctx, ep.ID, *st.failingSince, now)
	if err != nil {
		fail("disable", err)
		return
	}
	hl.remember(e, rec)
	if !applied {
		return // another function disabled it, or the endpoint is not as this one knew it
	}
	log.WarnContext(ctx, "endpoint disabled", "endpoint_id", ep.ID, "tenant_id", ep.TenantID,
		"failing_since", *st.failingSince, "disabled_reason", endpoint.ReasonFailing)
	if hl.Events != nil {
		hl.Events.Publish(OpEvent{DetailType: DetailTypeEndpointDisabled, Time: now, Detail: EndpointDisabled{
			EndpointID: ep.ID, TenantID: ep.TenantID, FailingSince: st.failingSince.UTC(), DisabledAt: now.UTC(),
		}})
	}
}
