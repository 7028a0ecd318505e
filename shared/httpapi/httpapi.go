// Package httpapi is pushfn's HTTP API as an API Gateway HTTP API handler (payload
// format 2.0): accept one message or a batch, report a message's state, retry a failed one,
// manage endpoints and their secrets, and list the deliveries of an endpoint or of a fan-out
// message.
//
// Ships in the api function.
package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/opevent"
	"github.com/pushfn/pushfn/shared/store"
)

// Records reads message records; store.Store implements it.
type Records interface {
	Get(ctx context.Context, id string) (message.Record, error)
}

var _ Records = store.Store(nil)

// Error codes of the routing and transport layer; the message-level codes are in ingest.
const (
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "payload_too_large"
	CodeUnsupportedType  = "unsupported_media_type"
)

// Paths of the routes.
const (
	PathMessages = "/v1/messages"
	PathBatch    = "/v1/messages/batch"
)

// Handler serves the HTTP API. Its fields are set once and never changed; it is safe for
// concurrent use.
type Handler struct {
	Enqueuer *ingest.Enqueuer
	Records  Records
	Rules    message.Rules
	// Endpoints and Keyring serve the endpoint routes; without them those routes answer 404.
	Endpoints store.Endpoints
	Keyring   *endpoint.Keyring
	// Deliveries serves GET /v1/endpoints/{id}/deliveries (with Endpoints and Keyring), GET
	// /v1/messages/{id}/deliveries and the deliveries summary of a fan-out's GET; without it those
	// routes answer 404 and a fan-out's GET has no summary.
	Deliveries store.Deliveries
	// Events takes the operational events of the routes (an endpoint enabled again); nil: none.
	Events Events
	// Reopener serves POST /v1/messages/{id}/retry, which queues the reopened copy through the
	// Enqueuer's producer; without it that route answers 404.
	Reopener Reopener
	// Metrics takes the metrics of each request to the message routes, written once at its
	// end; nil writes none.
	Metrics *metrics.Writer
	Logger  *slog.Logger     // nil means slog.Default()
	Now     func() time.Time // nil means time.Now
}

// Events is where the routes put operational events, flushed before the answer;
// *opevent.Batcher has it.
type Events interface {
	opevent.Publisher
	Flush(ctx context.Context)
}

var _ Events = (*opevent.Batcher)(nil)

// Handle answers one request. It never returns an error: API Gateway would turn one into a bare
// 502, so every failure is an answer with the error envelope.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, _ error) {
	method := req.RequestContext.HTTP.Method
	path, prefix := routePath(req)
	// Every route counts its AWS requests; the message routes count their messages too.
	m := h.Metrics.Invocation()
	ctx = metrics.NewContext(ctx, m)
	defer func() {
		if v := recover(); v != nil {
			h.logger().ErrorContext(ctx, "request panicked", "method", method, "path", path, "panic", v)
			resp = reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil)
		}
		h.logger().InfoContext(ctx, "request", "method", method, "path", path, "status", resp.StatusCode)
		h.flushMetrics(ctx, m)
	}()

	switch {
	case path == PathMessages:
		if method != http.MethodPost {
			return methodNotAllowed(http.MethodPost), nil
		}
		return countOne(m, h.postOne(ctx, req, prefix)), nil
	case path == PathBatch:
		if method != http.MethodPost {
			return methodNotAllowed(http.MethodPost), nil
		}
		return h.postBatch(ctx, req, m), nil
	}
	if h.Endpoints != nil && h.Keyring != nil {
		if resp, ok := h.endpointRoute(ctx, req, method, path, prefix); ok {
			return resp, nil
		}
	}
	if id, ok := strings.CutPrefix(path, PathRecoveries+"/"); ok && id != "" && !strings.Contains(id, "/") {
		if method != http.MethodGet {
			return methodNotAllowed(http.MethodGet), nil
		}
		return h.getRecovery(ctx, id), nil
	}
	if rest, ok := strings.CutPrefix(path, PathMessages+"/"); ok {
		id, sub, _ := strings.Cut(rest, "/")
		switch {
		case id == "":
		case rest == id:
			if method != http.MethodGet {
				return methodNotAllowed(http.MethodGet), nil
			}
			return h.get(ctx, id), nil
		case sub == "retry" && h.Reopener != nil && h.Enqueuer != nil:
			if method != http.MethodPost {
				return methodNotAllowed(http.MethodPost), nil
			}
			return h.retry(ctx, req, id, prefix), nil
		case sub == "deliveries" && h.Deliveries != nil:
			if method != http.MethodGet {
				return methodNotAllowed(http.MethodGet), nil
			}
			return h.listMessageDeliveries(ctx, req, id), nil
		}
	}
	return reply(http.StatusNotFound, errorBody(CodeNotFound, "no such route: "+method+" "+path), nil), nil
}

// routePath is the request path without the stage prefix a named stage adds, and that prefix.
func routePath(req events.APIGatewayV2HTTPRequest) (path, prefix string) {
	path = req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	if st := req.RequestContext.Stage; st != "" && st != "$default" {
		if rest, ok := strings.CutPrefix(path, "/"+st); ok && strings.HasPrefix(rest, "/") {
			return rest, "/" + st
		}
	}
	return path, ""
}

func (h *Handler) postOne(ctx context.Context, req events.APIGatewayV2HTTPRequest, prefix string) events.APIGatewayV2HTTPResponse {
	body, failed := readBody(req, h.Rules.MaxBodyBytes())
	if failed != nil {
		return *failed
	}
	m, err := h.Rules.Parse(body, h.now())
	var invalid *message.InvalidError
	if err != nil && !errors.As(err, &invalid) {
		return reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil)
	}
	if invalid == nil || !invalid.Malformed {
		if p := headerKey(req, &m, invalid != nil); p != nil {
			if invalid == nil {
				invalid = &message.InvalidError{}
			}
			invalid.Problems = append(invalid.Problems, *p)
		}
	}
	if invalid != nil {
		return reply(http.StatusBadRequest, ingest.InvalidBody(invalid), nil)
	}
	if resp, refused := h.checkEndpoints(ctx, []message.Message{m}, false); refused {
		return resp
	}

	r := h.Enqueuer.Enqueue(ctx, []message.Message{m})[0]
	headers := map[string]string{}
	if r.ID != "" {
		headers["Location"] = prefix + PathMessages + "/" + r.ID
	}
	switch {
	case r.Err == nil && r.Replayed:
		headers["Idempotent-Replayed"] = "true"
		return reply(http.StatusOK, accepted{ID: r.ID, Status: r.Status}, headers)
	case r.Err == nil:
		return reply(http.StatusAccepted, accepted{ID: r.ID, Status: r.Status}, headers)
	}
	e := ingest.ErrorOf(r.Err)
	body2 := ingest.ErrorBody{Error: e}
	switch e.Code {
	case ingest.CodeKeyReused:
		return reply(http.StatusUnprocessableEntity, body2, headers)
	case ingest.CodeEndpointNotFound:
		// Deleted between the check and the record: nothing was written.
		delete(headers, "Location")
		return reply(http.StatusUnprocessableEntity, body2, headers)
	case ingest.CodeInProgress:
		headers["Retry-After"] = strconv.Itoa(ingest.RetryAfterSeconds(r))
		return reply(http.StatusConflict, body2, headers)
	case ingest.CodeUnavailable:
		delete(headers, "Location")
		headers["Retry-After"] = strconv.Itoa(ingest.RetryAfterSeconds(r))
		return reply(http.StatusServiceUnavailable, body2, headers)
	}
	return reply(http.StatusInternalServerError, body2, nil)
}

// accepted is the body of a single message's success.
type accepted struct {
	ID     string         `json:"id"`
	Status message.Status `json:"status"`
}

// headerKey applies the Idempotency-Key header to m, or returns the problem with it. The header
// may be a bare token or an RFC 8941 string ("..."), as the IETF draft writes it.
func headerKey(req events.APIGatewayV2HTTPRequest, m *message.Message, bodyInvalid bool) *message.Problem {
	key, ok := header(req, "Idempotency-Key")
	if !ok {
		return nil
	}
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	if reason := message.CheckIdempotencyKey(key); reason != "" {
		return &message.Problem{Index: -1, Field: "Idempotency-Key", Reason: "header " + reason}
	}
	switch {
	case m.IdempotencyKey == "" && !bodyInvalid:
		m.IdempotencyKey = key
	case m.IdempotencyKey != "" && m.IdempotencyKey != key:
		return &message.Problem{Index: -1, Field: "idempotency_key", Reason: "differs from the Idempotency-Key header; give the key once, or the same in both"}
	}
	return nil
}

// postBatch answers a batch, counting in m what became of its messages.
func (h *Handler) postBatch(ctx context.Context, req events.APIGatewayV2HTTPRequest, m *metrics.Set) events.APIGatewayV2HTTPResponse {
	body, failed := readBody(req, message.MaxBatchBodyBytes)
	if failed != nil {
		return countRefused(m, *failed, 1)
	}
	ms, err := h.Rules.ParseBatch(body, h.now())
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		return countRefused(m, reply(http.StatusBadRequest, ingest.InvalidBody(invalid), nil), 1)
	} else if err != nil {
		return countRefused(m, reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil), 1)
	}
	if resp, refused := h.checkEndpoints(ctx, ms, true); refused {
		return countRefused(m, resp, len(ms))
	}

	rs := h.Enqueuer.Enqueue(ctx, ms)
	countResults(m, rs)
	failedN, unavailable, internal, replayed := 0, 0, 0, 0
	for _, r := range rs {
		switch {
		case errors.Is(r.Err, ingest.ErrUnavailable):
			unavailable++
			failedN++
		case r.Err != nil:
			if ingest.ErrorOf(r.Err).Code == ingest.CodeInternal {
				internal++
			}
			failedN++
		case r.Replayed:
			replayed++
		}
	}
	headers := map[string]string{}
	if s := ingest.RetryAfterSeconds(rs...); s > 0 {
		headers["Retry-After"] = strconv.Itoa(s)
	}
	switch {
	case unavailable == len(rs):
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.ErrorOf(ingest.ErrUnavailable)}, headers)
	case internal == len(rs):
		return reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil)
	case failedN > 0:
		return reply(http.StatusMultiStatus, ingest.ItemsOf(rs), headers)
	case replayed == len(rs):
		headers["Idempotent-Replayed"] = "true"
	}
	return reply(http.StatusAccepted, ingest.ItemsOf(rs), headers)
}

// checkEndpoints refuses a request whose messages name an endpoint that does not exist (422,
// nothing written or queued), or whose endpoints could not be read (503).
func (h *Handler) checkEndpoints(ctx context.Context, ms []message.Message, batch bool) (events.APIGatewayV2HTTPResponse, bool) {
	err := h.Enqueuer.CheckEndpoints(ctx, ms, batch)
	var missing *ingest.MissingEndpointsError
	switch {
	case err == nil:
		return events.APIGatewayV2HTTPResponse{}, false
	case errors.As(err, &missing):
		return reply(http.StatusUnprocessableEntity, ingest.MissingEndpointsBody(missing), nil), true
	case errors.Is(err, ingest.ErrUnavailable):
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable, Message: "the endpoint could not be read; retry later (with the same idempotency key, if any)"}},
			map[string]string{"Retry-After": "2"}), true
	}
	h.logger().ErrorContext(ctx, "check endpoints", "error", err)
	return reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil), true
}

// View is the body of GET /v1/messages/{id}, and an item of a deliveries listing.
type View struct {
	ID          string         `json:"id"`
	Status      message.Status `json:"status"`
	Attempts    int            `json:"attempts"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	DeliveredAt *time.Time     `json:"delivered_at"`
	ExpiresAt   *time.Time     `json:"expires_at,omitempty"`
	TargetHost  string         `json:"target_host"`
	// MessageID is the fan-out message a delivery belongs to (the view of a dlv_ record).
	MessageID  string `json:"message_id,omitempty"`
	EndpointID string `json:"endpoint_id,omitempty"` // for a message to an endpoint, and a delivery
	// EventType and TenantID are those of a fan-out message; Deliveries is its summary, set by
	// the handler's GET (ViewOf leaves it nil).
	EventType   string           `json:"event_type,omitempty"`
	TenantID    string           `json:"tenant_id,omitempty"`
	LastAttempt *message.Attempt `json:"last_attempt"`
	// History is the last attempts of the deliveries the record ended before it was retried,
	// oldest first; absent when it was never retried.
	History    []message.Attempt `json:"history,omitempty"`
	Deliveries *Summary          `json:"deliveries,omitempty"`
}

// ViewOf reports a record as GET shows it: times in UTC, absent times as null.
func ViewOf(rec message.Record) View {
	v := View{
		ID:          rec.ID,
		Status:      rec.Status,
		Attempts:    rec.Attempts,
		CreatedAt:   rec.CreatedAt.UTC(),
		UpdatedAt:   rec.UpdatedAt.UTC(),
		TargetHost:  rec.TargetHost,
		MessageID:   rec.MessageID,
		EndpointID:  rec.EndpointID,
		EventType:   rec.EventType,
		TenantID:    rec.TenantID,
		LastAttempt: rec.LastAttempt,
	}
	if !rec.DeliveredAt.IsZero() {
		t := rec.DeliveredAt.UTC()
		v.DeliveredAt = &t
	}
	if rec.ExpiresAt != nil {
		t := rec.ExpiresAt.UTC()
		v.ExpiresAt = &t
	}
	if a := rec.LastAttempt; a != nil {
		c := *a
		c.At = c.At.UTC()
		v.LastAttempt = &c
	}
	for _, a := range rec.History {
		a.At = a.At.UTC()
		v.History = append(v.History, a)
	}
	return v
}

func (h *Handler) get(ctx context.Context, id string) events.APIGatewayV2HTTPResponse {
	notFound := reply(http.StatusNotFound, errorBody(CodeNotFound, "no message with this id"), nil)
	if !message.ValidID(id) {
		return notFound
	}
	rec, err := h.Records.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case err != nil:
		h.logger().WarnContext(ctx, "read record", "message_id", id, "error", err)
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable, Message: "the message state could not be read; retry later"}}, map[string]string{"Retry-After": "2"})
	}
	v := ViewOf(rec)
	if rec.EventType != "" && h.Deliveries != nil {
		s, failed := h.summary(ctx, rec)
		if failed != nil {
			return *failed
		}
		v.Deliveries = &s
	}
	return reply(http.StatusOK, v, nil)
}

// readBody returns the request body, refusing a non-JSON Content-Type (415) and a body over limit
// bytes (413) before decoding anything.
func readBody(req events.APIGatewayV2HTTPRequest, limit int) ([]byte, *events.APIGatewayV2HTTPResponse) {
	if msg := checkContentType(req); msg != "" {
		r := reply(http.StatusUnsupportedMediaType, errorBody(CodeUnsupportedType, msg), nil)
		return nil, &r
	}
	tooLarge := func() *events.APIGatewayV2HTTPResponse {
		r := reply(http.StatusRequestEntityTooLarge, errorBody(CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit)), nil)
		return &r
	}
	if !req.IsBase64Encoded {
		if len(req.Body) > limit {
			return nil, tooLarge()
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body))-2 > limit {
		return nil, tooLarge()
	}
	body, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		r := reply(http.StatusBadRequest, errorBody(ingest.CodeInvalidJSON, "the body is marked base64 but does not decode"), nil)
		return nil, &r
	}
	if len(body) > limit {
		return nil, tooLarge()
	}
	return body, nil
}

// checkContentType returns why the request's Content-Type is refused, or "": it must be JSON
// (application/json or a +json type), in UTF-8 if a charset is given, and not compressed.
func checkContentType(req events.APIGatewayV2HTTPRequest) string {
	const want = "send Content-Type: application/json"
	ct, ok := header(req, "Content-Type")
	if !ok {
		return "no Content-Type; " + want
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return "the body must be JSON; " + want
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "the body must be UTF-8; " + want
	}
	if ce, ok := header(req, "Content-Encoding"); ok && ce != "" && !strings.EqualFold(ce, "identity") {
		return "compressed bodies are not accepted; send the JSON uncompressed"
	}
	return ""
}

// header returns a request header; API Gateway lowercases names, but tests and local runs may not.
func header(req events.APIGatewayV2HTTPRequest, name string) (string, bool) {
	if v, ok := req.Headers[strings.ToLower(name)]; ok {
		return strings.TrimSpace(v), true
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func methodNotAllowed(allow string) events.APIGatewayV2HTTPResponse {
	return reply(http.StatusMethodNotAllowed, errorBody(CodeMethodNotAllowed, "use "+allow+" on this route"), map[string]string{"Allow": allow})
}

func errorBody(code, msg string) ingest.ErrorBody {
	return ingest.ErrorBody{Error: ingest.Error{Code: code, Message: msg}}
}

// reply builds a JSON response.
func reply(status int, body any, headers map[string]string) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
	}
	h := map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}
	for k, v := range headers {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: string(b)}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}
