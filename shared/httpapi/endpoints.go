package httpapi

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/opevent"
	"github.com/pushfn/pushfn/shared/store"
)

// PathEndpoints is the endpoints collection; an endpoint is PathEndpoints + "/" + id.
const PathEndpoints = "/v1/endpoints"

// CodeConflict is the code of a 409 answered when an endpoint kept changing under an update.
const CodeConflict = "conflict"

// writeAttempts bounds the read-apply-write rounds of an update that meets concurrent writes:
// each round that loses the race reads the new version and applies the request to it again.
const writeAttempts = 5

// endpointRoute serves /v1/endpoints and what is under it; ok is false for other paths.
func (h *Handler) endpointRoute(ctx context.Context, req events.APIGatewayV2HTTPRequest, method, path, prefix string) (events.APIGatewayV2HTTPResponse, bool) {
	if path == PathEndpoints {
		switch method {
		case http.MethodPost:
			return h.createEndpoint(ctx, req, prefix), true
		case http.MethodGet:
			return h.listEndpoints(ctx, req), true
		}
		return methodNotAllowed("GET, POST"), true
	}
	rest, ok := strings.CutPrefix(path, PathEndpoints+"/")
	if !ok || rest == "" {
		return events.APIGatewayV2HTTPResponse{}, false
	}
	id, sub, _ := strings.Cut(rest, "/")
	var allow string
	switch sub {
	case "":
		allow = "DELETE, GET, PATCH"
	case "secret":
		allow = http.MethodGet
	case "secret/rotate":
		allow = http.MethodPost
	case "deliveries":
		if h.Deliveries == nil {
			return events.APIGatewayV2HTTPResponse{}, false
		}
		allow = http.MethodGet
	case "recover":
		allow = http.MethodPost
	default:
		return events.APIGatewayV2HTTPResponse{}, false
	}
	if !strings.Contains(", "+allow+",", " "+method+",") {
		return methodNotAllowed(allow), true
	}
	if !endpoint.ValidID(id) {
		return endpointNotFound(), true
	}
	switch {
	case sub == "secret":
		return h.getSecret(ctx, id), true
	case sub == "secret/rotate":
		return h.rotateSecret(ctx, req, id), true
	case sub == "deliveries":
		return h.listDeliveries(ctx, req, id), true
	case sub == "recover":
		return h.startRecovery(ctx, req, id, prefix), true
	case method == http.MethodGet:
		return h.getEndpoint(ctx, id), true
	case method == http.MethodPatch:
		return h.patchEndpoint(ctx, req, id), true
	}
	return h.deleteEndpoint(ctx, id), true
}

func endpointNotFound() events.APIGatewayV2HTTPResponse {
	return reply(http.StatusNotFound, errorBody(CodeNotFound, "no endpoint with this id"), nil)
}

// invalidEndpoint is the 400 of a refused endpoint body or query.
func invalidEndpoint(err *message.InvalidError, what string) events.APIGatewayV2HTTPResponse {
	body := ingest.InvalidBody(err)
	if !err.Malformed {
		body.Error.Message = "the " + what + " is not valid; see details"
	}
	return reply(http.StatusBadRequest, body, nil)
}

// unavailable is the 503 of a store that could not be reached; the error is logged, not shown.
func (h *Handler) unavailable(ctx context.Context, op, id string, err error) events.APIGatewayV2HTTPResponse {
	h.logger().WarnContext(ctx, op, "endpoint_id", id, "error", err)
	return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable,
		Message: "the endpoint store could not be reached; retry later"}}, map[string]string{"Retry-After": "2"})
}

func (h *Handler) internal(ctx context.Context, op, id string, err error) events.APIGatewayV2HTTPResponse {
	h.logger().ErrorContext(ctx, op, "endpoint_id", id, "error", err)
	return reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil)
}

// nowMillis is the time of a write: UTC, whole milliseconds, as answers show it.
func (h *Handler) nowMillis() time.Time { return h.now().UTC().Truncate(time.Millisecond) }

// created is the answer of a create: the endpoint and, this once, its secret.
type created struct {
	endpoint.Endpoint
	Secret string `json:"secret"`
}

func (h *Handler) createEndpoint(ctx context.Context, req events.APIGatewayV2HTTPRequest, prefix string) events.APIGatewayV2HTTPResponse {
	body, failed := readBody(req, endpoint.MaxBodyBytes)
	if failed != nil {
		return *failed
	}
	now := h.nowMillis()
	c, err := endpoint.ParseCreate(body, h.Rules, now)
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		return invalidEndpoint(invalid, "endpoint")
	} else if err != nil {
		return h.internal(ctx, "parse endpoint", "", err)
	}
	secret := endpoint.GenerateSecret()
	if c.Secret != nil {
		secret = *c.Secret
	}
	rec := endpoint.Record{Endpoint: c.Endpoint}
	rec.ID, rec.CreatedAt, rec.UpdatedAt = endpoint.NewID(now), now, now
	rec.Secret = h.Keyring.Seal(rec.ID, secret)
	stored, err := h.Endpoints.CreateEndpoint(ctx, rec)
	if err != nil {
		// ErrEndpointExists too: ids are random, so a retry makes another and succeeds.
		return h.unavailable(ctx, "create endpoint", rec.ID, err)
	}
	rec = stored
	h.logger().InfoContext(ctx, "endpoint created", "endpoint_id", rec.ID)
	return reply(http.StatusCreated, created{Endpoint: rec.Normalized(), Secret: secret.Reveal()},
		map[string]string{"Location": prefix + PathEndpoints + "/" + rec.ID})
}

// read reads an endpoint, or returns the 404 or 503 to answer when it cannot.
func (h *Handler) read(ctx context.Context, id string) (endpoint.Record, *events.APIGatewayV2HTTPResponse) {
	rec, err := h.Endpoints.GetEndpoint(ctx, id)
	switch {
	case errors.Is(err, store.ErrEndpointNotFound):
		r := endpointNotFound()
		return rec, &r
	case err != nil:
		r := h.unavailable(ctx, "read endpoint", id, err)
		return rec, &r
	}
	return rec, nil
}

func (h *Handler) getEndpoint(ctx context.Context, id string) events.APIGatewayV2HTTPResponse {
	rec, failed := h.read(ctx, id)
	if failed != nil {
		return *failed
	}
	return reply(http.StatusOK, rec.Normalized(), nil)
}

// page is the answer of a listing.
type page struct {
	Endpoints  []endpoint.Endpoint `json:"endpoints"`
	NextCursor *string             `json:"next_cursor"`
}

// listQuery reads the listing's query string: tenant_id, limit (1 to 100) and cursor, nothing
// else and each at most once.
func listQuery(req events.APIGatewayV2HTTPRequest) (store.EndpointQuery, *message.InvalidError) {
	var q store.EndpointQuery
	values, ps := queryValues(req)
	add := func(field, reason string) { ps = append(ps, message.Problem{Index: -1, Field: field, Reason: reason}) }
	for _, k := range slices.Sorted(maps.Keys(values)) {
		v := values[k]
		switch k {
		case "tenant_id":
			if reason := message.CheckTenantID(v); reason != "" {
				add(k, reason+" (leave tenant_id out to list every endpoint)")
				continue
			}
			q.TenantID = &v
		case "limit":
			if n, ok := listLimit(v, add); ok {
				q.Limit = n
			}
		case "cursor":
			q.Cursor = v
		default:
			add(k, "unknown query parameter; a listing takes tenant_id, limit and cursor")
		}
	}
	if len(ps) > 0 {
		return q, &message.InvalidError{Problems: ps}
	}
	return q, nil
}

func (h *Handler) listEndpoints(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	q, invalid := listQuery(req)
	if invalid != nil {
		return invalidEndpoint(invalid, "query")
	}
	if q.Limit == 0 {
		q.Limit = store.DefaultListLimit
	}
	pg, err := h.Endpoints.ListEndpoints(ctx, q)
	switch {
	case errors.Is(err, store.ErrCursor):
		return invalidEndpoint(&message.InvalidError{Problems: []message.Problem{{Index: -1, Field: "cursor",
			Reason: "is not a cursor of this listing: pass next_cursor as it was given, with the same tenant_id"}}}, "query")
	case err != nil:
		return h.unavailable(ctx, "list endpoints", "", err)
	}
	out := page{Endpoints: make([]endpoint.Endpoint, len(pg.Endpoints))}
	for i, rec := range pg.Endpoints {
		out.Endpoints[i] = rec.Normalized()
	}
	if pg.Next != "" {
		out.NextCursor = &pg.Next
	}
	return reply(http.StatusOK, out, nil)
}

// update reads the endpoint, lets change edit it and writes it back with a version check,
// reading again and reapplying the change when another write got there first, at most
// writeAttempts times (then 409). change returns a response to answer instead of writing
// (a refusal), or nil; when it leaves the record as it was, nothing is written.
func (h *Handler) update(ctx context.Context, id string, change func(rec *endpoint.Record, now time.Time) *events.APIGatewayV2HTTPResponse) (endpoint.Record, *events.APIGatewayV2HTTPResponse) {
	for range writeAttempts {
		cur, failed := h.read(ctx, id)
		if failed != nil {
			return cur, failed
		}
		next := cur.Clone()
		now := h.nowMillis()
		if r := change(&next, now); r != nil {
			return cur, r
		}
		if reflect.DeepEqual(next, cur) {
			return cur, nil
		}
		next.UpdatedAt = now
		written, err := h.Endpoints.UpdateEndpoint(ctx, next)
		switch {
		case err == nil:
			return written, nil
		case errors.Is(err, store.ErrVersion):
			continue
		case errors.Is(err, store.ErrEndpointNotFound):
			r := endpointNotFound()
			return cur, &r
		}
		r := h.unavailable(ctx, "update endpoint", id, err)
		return cur, &r
	}
	r := reply(http.StatusConflict, errorBody(CodeConflict, "the endpoint kept changing under this request; retry it"), map[string]string{"Retry-After": "1"})
	return endpoint.Record{}, &r
}

func (h *Handler) patchEndpoint(ctx context.Context, req events.APIGatewayV2HTTPRequest, id string) events.APIGatewayV2HTTPResponse {
	body, failed := readBody(req, endpoint.MaxBodyBytes)
	if failed != nil {
		return *failed
	}
	p, err := endpoint.ParsePatch(body)
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		return invalidEndpoint(invalid, "update")
	} else if err != nil {
		return h.internal(ctx, "parse endpoint update", id, err)
	}
	var enabled *opevent.EndpointEnable // set by the round whose write applied
	rec, failed := h.update(ctx, id, func(rec *endpoint.Record, now time.Time) *events.APIGatewayV2HTTPResponse {
		enabled = nil
		if rec.Disabled {
			enabled = &opevent.EndpointEnable{EndpointID: rec.ID, TenantID: rec.TenantID, DisabledReason: rec.DisabledReason, EnabledAt: now.UTC()}
		}
		rec.Endpoint = p.Apply(rec.Endpoint, now)
		if ps := endpoint.Validate(rec.Endpoint, h.Rules); len(ps) > 0 {
			r := invalidEndpoint(&message.InvalidError{Problems: ps}, "endpoint as updated")
			return &r
		}
		if rec.Disabled {
			enabled = nil
		}
		return nil
	})
	if failed != nil {
		return *failed
	}
	if enabled != nil && h.Events != nil {
		// Put on the bus before the answer: the function may be frozen once it has answered.
		h.Events.Publish(opevent.Event{DetailType: opevent.EndpointEnabled, Detail: *enabled, Time: enabled.EnabledAt})
		h.Events.Flush(ctx)
	}
	return reply(http.StatusOK, rec.Normalized(), nil)
}

func (h *Handler) deleteEndpoint(ctx context.Context, id string) events.APIGatewayV2HTTPResponse {
	for range writeAttempts {
		rec, failed := h.read(ctx, id)
		if failed != nil {
			return *failed
		}
		err := h.Endpoints.DeleteEndpoint(ctx, id, rec.Version)
		switch {
		case err == nil:
			h.logger().InfoContext(ctx, "endpoint deleted", "endpoint_id", id)
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: map[string]string{"Cache-Control": "no-store"}}
		case errors.Is(err, store.ErrVersion):
			continue
		}
		return h.unavailable(ctx, "delete endpoint", id, err)
	}
	return reply(http.StatusConflict, errorBody(CodeConflict, "the endpoint kept changing under this request; retry it"), map[string]string{"Retry-After": "1"})
}

// secretBody is the answer of the secret routes.
type secretBody struct {
	Key string `json:"key"`
}

func (h *Handler) getSecret(ctx context.Context, id string) events.APIGatewayV2HTTPResponse {
	rec, failed := h.read(ctx, id)
	if failed != nil {
		return *failed
	}
	s, err := rec.CurrentSecret(h.Keyring)
	if err != nil {
		return h.internal(ctx, "open endpoint secret (was ENDPOINT_SECRETS_KEY changed?)", id, err)
	}
	return reply(http.StatusOK, secretBody{Key: s.Reveal()}, nil)
}

func (h *Handler) rotateSecret(ctx context.Context, req events.APIGatewayV2HTTPRequest, id string) events.APIGatewayV2HTTPResponse {
	var body []byte
	if strings.TrimSpace(req.Body) != "" {
		b, failed := readBody(req, endpoint.MaxBodyBytes)
		if failed != nil {
			return *failed
		}
		body = b
	}
	given, err := endpoint.ParseRotate(body)
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		return invalidEndpoint(invalid, "rotation")
	} else if err != nil {
		return h.internal(ctx, "parse rotation", id, err)
	}
	next := endpoint.GenerateSecret()
	if given != nil {
		next = *given
	}
	_, failed := h.update(ctx, id, func(rec *endpoint.Record, now time.Time) *events.APIGatewayV2HTTPResponse {
		rec.Rotate(h.Keyring, next, now)
		return nil
	})
	if failed != nil {
		return *failed
	}
	h.logger().InfoContext(ctx, "endpoint secret rotated", "endpoint_id", id)
	return reply(http.StatusOK, secretBody{Key: next.Reveal()}, nil)
}
