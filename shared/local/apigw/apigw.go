// Package apigw serves a Lambda function over HTTP as an API Gateway HTTP API does: each request
// becomes the payload format 2.0 event, and the function's answer becomes the response.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package apigw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// MaxBody is the largest request body an HTTP API accepts.
const MaxBody = 10 * 1024 * 1024

// Invoker runs the function behind the API: a lambdarun.Pool, or an in-process handler in tests.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, *lambdarun.FunctionError, error)
}

var _ Invoker = (*lambdarun.Pool)(nil)

// Route is one route of the API, as a template's HttpApi event declares it: a method (or ANY)
// and a path whose segments may be {name} parameters or a final {name+} greedy one; or the
// catch-all route, Path "$default".
type Route struct {
	Method string
	Path   string
}

// Key is the route key API Gateway puts in the event, such as "GET /v1/messages/{id}" or
// "$default".
func (r Route) Key() string {
	if r.Path == "$default" {
		return r.Path
	}
	return strings.ToUpper(r.Method) + " " + r.Path
}

// Handler is an http.Handler that invokes a function for each request as API Gateway would.
type Handler struct {
	fn      Invoker
	routes  []Route // most specific first
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
}

// Option changes a Handler.
type Option func(*Handler)

// WithLogger logs failures to l, and each request at debug level.
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithClock gives the Handler its time, for tests.
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// New returns a Handler for fn. With no routes, every request goes to the $default route, as
// when a template declares none; otherwise a request no route matches gets 404.
func New(fn Invoker, routes []Route, opts ...Option) *Handler {
	h := &Handler{fn: fn, routes: sortRoutes(routes), timeout: 30 * time.Second, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(h)
	}
	return h
}

// ServeHTTP answers one request through the function.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	requestID := newRequestID()
	w.Header().Set("Apigw-Requestid", requestID)
	routeKey, params, ok := h.match(r)
	if !ok {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > MaxBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	event := Event(r, body, routeKey, params, requestID, start)
	payload, err := json.Marshal(event)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	// API Gateway gives an integration at most 30 seconds, then answers 503.
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	out, fnErr, err := h.fn.Invoke(ctx, payload)
	status := 0
	switch {
	case errors.Is(err, lambdarun.ErrPayloadTooLarge):
		// Lambda refuses an event above 6 MB, before the function runs.
		status = writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	case errors.Is(err, context.DeadlineExceeded):
		status = writeMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
	case err != nil:
		h.log.Error("invoke failed", "request_id", requestID, "route", routeKey, "error", err)
		status = writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
	case fnErr != nil:
		h.log.Error("function error", "request_id", requestID, "route", routeKey, "error_type", fnErr.Type)
		status = writeMessage(w, http.StatusBadGateway, "Internal Server Error")
	default:
		status, err = WriteResponse(w, out)
		if err != nil {
			h.log.Error("malformed function response", "request_id", requestID, "route", routeKey, "error", err)
		}
	}
	h.log.Debug("request", "request_id", requestID, "method", r.Method, "path", r.URL.Path, "route", routeKey,
		"status", status, "duration_ms", h.now().Sub(start).Milliseconds())
}

// Event returns the payload format 2.0 event API Gateway sends for r with body, matched to
// routeKey with its path parameters.
func Event(r *http.Request, body []byte, routeKey string, params map[string]string, requestID string, now time.Time) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	var cookies []string
	for name, values := range r.Header {
		name = strings.ToLower(name)
		if name == "cookie" {
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[name] = strings.Join(values, ",")
	}
	sourceIP, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	headers["host"] = r.Host
	if len(body) > 0 || r.ContentLength > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}
	if xff := headers["x-forwarded-for"]; xff != "" {
		headers["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	if _, local, err := net.SplitHostPort(r.Host); err == nil {
		port = local
	}
	headers["x-forwarded-port"] = port
	headers["x-forwarded-proto"] = "http"
	headers["x-amzn-trace-id"] = "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + hex.EncodeToString(random(12))

	var query map[string]string
	if values, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(values) > 0 {
		query = make(map[string]string, len(values))
		for k, v := range values {
			query[k] = strings.Join(v, ",")
		}
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	prefix, _, _ := strings.Cut(host, ".")
	event := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "123456789012",
			Stage:        "$default",
			RequestID:    requestID,
			APIID:        "local",
			DomainName:   host,
			DomainPrefix: prefix,
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			event.Body = string(body)
		} else {
			event.Body = base64.StdEncoding.EncodeToString(body)
			event.IsBase64Encoded = true
		}
	}
	return event
}

// isText reports whether API Gateway passes a body of this media type as text rather than base64.
func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/ecmascript":
		return true
	}
	return false
}

// WriteResponse writes the function's answer as API Gateway interprets a payload format 2.0
// response: an object with a statusCode is a structured response; any other JSON is a 200
// application/json body. A response that is neither is answered 502, and the error says why.
func WriteResponse(w http.ResponseWriter, payload []byte) (int, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(payload, &probe); err != nil || probe["statusCode"] == nil {
		if !json.Valid(payload) {
			return writeMessage(w, http.StatusBadGateway, "Internal Server Error"), errors.New("response is not JSON")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(payload)
		return http.StatusOK, nil
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(payload, &resp); err != nil {
		return writeMessage(w, http.StatusBadGateway, "Internal Server Error"), errors.New("response does not have the payload format 2.0 shape")
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return writeMessage(w, http.StatusBadGateway, "Internal Server Error"), errors.New("response has no valid statusCode")
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return writeMessage(w, http.StatusBadGateway, "Internal Server Error"), errors.New("isBase64Encoded body is not base64")
		}
		body = decoded
	}
	h := w.Header()
	for name, values := range resp.MultiValueHeaders {
		for _, v := range values {
			h.Add(name, v)
		}
	}
	for name, v := range resp.Headers {
		h.Set(name, v)
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" && len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return resp.StatusCode, nil
}

func writeMessage(w http.ResponseWriter, status int, message string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"message":"`+message+`"}`)
	return status
}

// match finds the route of r: its key and path parameters.
func (h *Handler) match(r *http.Request) (string, map[string]string, bool) {
	if len(h.routes) == 0 {
		return "$default", nil, true
	}
	segments := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	for _, route := range h.routes {
		if route.Path == "$default" {
			return "$default", nil, true
		}
		if m := strings.ToUpper(route.Method); m != "ANY" && m != r.Method {
			continue
		}
		if params, ok := matchPath(route.Path, segments); ok {
			return route.Key(), params, true
		}
	}
	return "", nil, false
}

func matchPath(pattern string, segments []string) (map[string]string, bool) {
	parts := strings.Split(strings.Trim(pattern, "/"), "/")
	greedy := strings.HasSuffix(parts[len(parts)-1], "+}")
	if len(segments) < len(parts) || (!greedy && len(segments) != len(parts)) {
		return nil, false
	}
	var params map[string]string
	for i, part := range parts {
		name, isParam := strings.CutPrefix(part, "{")
		name, _ = strings.CutSuffix(name, "}")
		if greedy && i == len(parts)-1 {
			if segments[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.TrimSuffix(name, "+")] = strings.Join(segments[i:], "/")
			return params, true
		}
		if !isParam {
			if part != segments[i] {
				return nil, false
			}
			continue
		}
		if segments[i] == "" {
			return nil, false
		}
		if params == nil {
			params = map[string]string{}
		}
		value, err := url.PathUnescape(segments[i])
		if err != nil {
			value = segments[i]
		}
		params[name] = value
	}
	return params, true
}

// sortRoutes orders routes as API Gateway prefers them: more literal segments first, greedy
// paths and $default last.
func sortRoutes(routes []Route) []Route {
	out := append([]Route(nil), routes...)
	score := func(r Route) int {
		if r.Path == "$default" {
			return -1000
		}
		s := 0
		for part := range strings.SplitSeq(strings.Trim(r.Path, "/"), "/") {
			switch {
			case strings.HasSuffix(part, "+}"):
				s -= 100
			case strings.HasPrefix(part, "{"):
				s++
			default:
				s += 10
			}
		}
		if strings.ToUpper(r.Method) == "ANY" {
			s--
		}
		return s
	}
	sort.SliceStable(out, func(i, j int) bool { return score(out[i]) > score(out[j]) })
	return out
}

func newRequestID() string {
	return base64.StdEncoding.EncodeToString(random(10))
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
