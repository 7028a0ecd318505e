package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Endpoints finds the endpoints messages name. An endpoint.Cache over the endpoint store
// (NewEndpointCache) implements it, so a warm function reads an endpoint at most once per
// endpoint.DefaultCacheTTL. Get returns an error wrapping store.ErrEndpointNotFound for an
// endpoint that does not exist.
type Endpoints interface {
	Get(ctx context.Context, id string) (endpoint.Record, error)
}

var _ Endpoints = (*endpoint.Cache[endpoint.Record])(nil)

// NewEndpointCache returns the cache the front doors find endpoints through: one read of an
// endpoint per endpoint.DefaultCacheTTL, not-found answers kept like endpoints. The records it
// keeps hold their secrets sealed; nothing here decrypts them.
func NewEndpointCache(s store.Endpoints) *endpoint.Cache[endpoint.Record] {
	return &endpoint.Cache[endpoint.Record]{
		Load: s.GetEndpoint,
		Keep: func(err error) bool { return errors.Is(err, store.ErrEndpointNotFound) },
	}
}

// ErrEndpointNotFound: a message names an endpoint that does not exist (422).
var ErrEndpointNotFound = errors.New("the message names an endpoint that does not exist")

// CodeEndpointNotFound is the code of a refusal for a missing endpoint.
const CodeEndpointNotFound = "endpoint_not_found"

// MissingEndpointsError lists the messages that name an endpoint that does not exist, each a
// problem at its field endpoint_id (with the message's index in a batch). It wraps
// ErrEndpointNotFound.
type MissingEndpointsError struct {
	Problems []message.Problem
}

// Error names every message naming a missing endpoint.
func (e *MissingEndpointsError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return ErrEndpointNotFound.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap returns ErrEndpointNotFound.
func (e *MissingEndpointsError) Unwrap() error { return ErrEndpointNotFound }

// MissingEndpointsBody reports err as the body of a 422: code endpoint_not_found, one detail
// per message naming a missing endpoint.
func MissingEndpointsBody(err *MissingEndpointsError) ErrorBody {
	body := InvalidBody(&message.InvalidError{Problems: err.Problems})
	body.Error.Code = CodeEndpointNotFound
	body.Error.Message = "a message names an endpoint that does not exist; see details"
	return body
}

// CheckEndpoints makes sure every endpoint msgs name exists, before anything is written or
// queued, so that a request is refused as a whole. It returns nil when they all exist, a
// *MissingEndpointsError listing the messages whose endpoint does not (indexed when batch is
// set), or an error wrapping ErrUnavailable when an endpoint could not be read. A message to an
// endpoint that is disabled is accepted: its delivery ends failed (endpoint_disabled), so that
// what the endpoint missed can be sent again later. A message whose idempotency key has a record
// already passes even when its endpoint is gone: it is a replay (or the key's reuse), answered as
// such by Enqueue.
func (e *Enqueuer) CheckEndpoints(ctx context.Context, msgs []message.Message, batch bool) error {
	found := map[string]error{}
	for _, m := range msgs {
		if m.EndpointID != "" {
			found[m.EndpointID] = nil
		}
	}
	if len(found) == 0 {
		return nil
	}
	if e.Endpoints == nil {
		return errors.New("check endpoints: no endpoint store configured")
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	errs := make([]error, len(ids))
	var g errgroup.Group
	g.SetLimit(createConcurrency)
	for i, id := range ids {
		g.Go(func() error {
			_, errs[i] = e.Endpoints.Get(ctx, id)
			return nil
		})
	}
	_ = g.Wait() // each lookup keeps its own outcome
	for i, id := range ids {
		switch err := errs[i]; {
		case err == nil, errors.Is(err, store.ErrEndpointNotFound):
			found[id] = err
		default:
			e.logger().WarnContext(ctx, "read endpoint", "endpoint_id", id, "error", err)
			return fmt.Errorf("read endpoint %s: %w: %w", id, ErrUnavailable, err)
		}
	}
	var missing MissingEndpointsError
	for i, m := range msgs {
		if m.EndpointID == "" || found[m.EndpointID] == nil {
			continue
		}
		// A retry of a message accepted before its endpoint was deleted is a replay: it is
		// answered with the message's id and state, not refused.
		if m.IdempotencyKey != "" {
			_, err := e.Store.Get(ctx, message.IDForKey(m.IdempotencyKey))
			switch {
			case err == nil:
				continue
			case !errors.Is(err, store.ErrNotFound):
				e.logger().WarnContext(ctx, "read record", "endpoint_id", m.EndpointID, "error", err)
				return fmt.Errorf("read record of key: %w: %w", ErrUnavailable, err)
			}
		}
		p := message.Problem{Index: i, Field: "endpoint_id", Reason: "no endpoint with this id"}
		if !batch {
			p.Index = -1
		}
		missing.Problems = append(missing.Problems, p)
	}
	if len(missing.Problems) > 0 {
		return &missing
	}
	return nil
}

// endpointHost returns the host of the URL of the endpoint m names, which its record keeps as
// target_host; for a message with a target, its target's host.
func (e *Enqueuer) endpointHost(ctx context.Context, m message.Message) (string, error) {
	if m.EndpointID == "" {
		return message.TargetHost(m.Target.URL), nil
	}
	if e.Endpoints == nil {
		return "", errors.New("no endpoint store configured")
	}
	ep, err := e.Endpoints.Get(ctx, m.EndpointID)
	switch {
	case errors.Is(err, store.ErrEndpointNotFound):
		return "", fmt.Errorf("endpoint %s: %w", m.EndpointID, ErrEndpointNotFound)
	case err != nil:
		return "", fmt.Errorf("read endpoint %s: %w: %w", m.EndpointID, ErrUnavailable, err)
	}
	return message.TargetHost(ep.URL), nil
}
