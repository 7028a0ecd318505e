package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

var routes = []Route{
	{Method: "POST", Path: "/v1/messages"},
	{Method: "POST", Path: "/v1/messages/batch"},
	{Method: "GET", Path: "/v1/messages/{id}"},
	{Method: "ANY", Path: "/files/{path+}"},
}

func TestEvent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		headers [][2]string
		check   func(t *testing.T, e events.APIGatewayV2HTTPRequest)
	}{
		{
			name: "json body and headers", method: "POST", target: "/v1/messages?a=1&a=2&b=x%20y",
			body:    `{"payload":{}}`,
			headers: [][2]string{{"Content-Type", "application/json"}, {"X-Tenant", "acme"}, {"X-Tenant", "beta"}, {"Cookie", "a=1; b=2"}, {"User-Agent", "curl/8"}},
			check: func(t *testing.T, e events.APIGatewayV2HTTPRequest) {
				want := map[string]string{"content-type": "application/json", "x-tenant": "acme,beta", "user-agent": "curl/8", "content-length": "14", "host": "example.com"}
				for k, v := range want {
					if e.Headers[k] != v {
						t.Errorf("header %s = %q, want %q", k, e.Headers[k], v)
					}
				}
				if _, ok := e.Headers["cookie"]; ok {
					t.Error("the cookie header is passed: want it in cookies only")
				}
				if !reflect.DeepEqual(e.Cookies, []string{"a=1", "b=2"}) {
					t.Errorf("cookies %q", e.Cookies)
				}
				if e.Body != `{"payload":{}}` || e.IsBase64Encoded {
					t.Errorf("body %q base64 %v: want the text", e.Body, e.IsBase64Encoded)
				}
				if e.RawQueryString != "a=1&a=2&b=x%20y" || !reflect.DeepEqual(e.QueryStringParameters, map[string]string{"a": "1,2", "b": "x y"}) {
					t.Errorf("query %q %v", e.RawQueryString, e.QueryStringParameters)
				}
				if e.Version != "2.0" || e.RouteKey != "POST /v1/messages" || e.RequestContext.RouteKey != e.RouteKey || e.RawPath != "/v1/messages" {
					t.Errorf("version %q route %q path %q", e.Version, e.RouteKey, e.RawPath)
				}
				h := e.RequestContext.HTTP
				if h.Method != "POST" || h.Path != "/v1/messages" || h.Protocol != "HTTP/1.1" || h.SourceIP != "192.0.2.1" || h.UserAgent != "curl/8" {
					t.Errorf("requestContext.http %+v", h)
				}
				if e.RequestContext.TimeEpoch != now.UnixMilli() || e.RequestContext.Time != "24/Nov/2026:10:00:00 +0000" || e.RequestContext.Stage != "$default" {
					t.Errorf("requestContext %+v", e.RequestContext)
				}
			},
		},
		{
			name: "path parameter", method: "GET", target: "/v1/messages/msg%2D1",
			check: func(t *testing.T, e events.APIGatewayV2HTTPRequest) {
				if e.RouteKey != "GET /v1/messages/{id}" || e.PathParameters["id"] != "msg-1" {
					t.Errorf("route %q params %v", e.RouteKey, e.PathParameters)
				}
				if e.Body != "" || e.IsBase64Encoded || e.QueryStringParameters != nil || e.Headers["content-length"] != "" {
					t.Errorf("empty request: body %q base64 %v query %v length %q", e.Body, e.IsBase64Encoded, e.QueryStringParameters, e.Headers["content-length"])
				}
			},
		},
		{
			name: "literal route wins over parameter", method: "POST", target: "/v1/messages/batch", body: "{}",
			headers: [][2]string{{"Content-Type", "application/json; charset=utf-8"}},
			check: func(t *testing.T, e events.APIGatewayV2HTTPRequest) {
				if e.RouteKey != "POST /v1/messages/batch" || e.IsBase64Encoded {
					t.Errorf("route %q base64 %v", e.RouteKey, e.IsBase64Encoded)
				}
			},
		},
		{
			name: "greedy path", method: "DELETE", target: "/files/a/b/c",
			check: func(t *testing.T, e events.APIGatewayV2HTTPRequest) {
				if e.RouteKey != "ANY /files/{path+}" || e.PathParameters["path"] != "a/b/c" {
					t.Errorf("route %q params %v", e.RouteKey, e.PathParameters)
				}
			},
		},
		{
			name: "binary body", method: "POST", target: "/v1/messages", body: "\xff\x00binary",
			headers: [][2]string{{"Content-Type", "application/octet-stream"}},
			check:   wantBase64("\xff\x00binary"),
		},
		{
			name: "form body", method: "POST", target: "/v1/messages", body: "a=1",
			headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}},
			check:   wantBase64("a=1"),
		},
		{
			name: "json type, invalid UTF-8", method: "POST", target: "/v1/messages", body: "\xff",
			headers: [][2]string{{"Content-Type", "application/json"}},
			check:   wantBase64("\xff"),
		},
		{
			name: "forwarded", method: "GET", target: "/v1/messages/x",
			headers: [][2]string{{"X-Forwarded-For", "198.51.100.7"}},
			check: func(t *testing.T, e events.APIGatewayV2HTTPRequest) {
				if e.Headers["x-forwarded-for"] != "198.51.100.7, 192.0.2.1" || e.Headers["x-forwarded-proto"] != "http" || !strings.HasPrefix(e.Headers["x-amzn-trace-id"], "Root=1-") {
					t.Errorf("headers %v", e.Headers)
				}
			},
		},
	}
	h := New(nil, routes)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			for _, kv := range tt.headers {
				r.Header.Add(kv[0], kv[1])
			}
			routeKey, params, ok := h.match(r)
			if !ok {
				t.Fatalf("%s %s matches no route", tt.method, tt.target)
			}
			e := Event(r, []byte(tt.body), routeKey, params, "req-1", now)
			if e.RequestContext.RequestID != "req-1" {
				t.Errorf("request id %q", e.RequestContext.RequestID)
			}
			tt.check(t, e)
		})
	}
}

func wantBase64(body string) func(*testing.T, events.APIGatewayV2HTTPRequest) {
	return func(t *testing.T, e events.APIGatewayV2HTTPRequest) {
		t.Helper()
		got, err := base64.StdEncoding.DecodeString(e.Body)
		if !e.IsBase64Encoded || err != nil || string(got) != body {
			t.Errorf("body %q base64 %v: want %q base64-encoded", e.Body, e.IsBase64Encoded, body)
		}
	}
}

// invokerFunc is an Invoker from a function.
type invokerFunc func(ctx context.Context, payload []byte) ([]byte, *lambdarun.FunctionError, error)

func (f invokerFunc) Invoke(ctx context.Context, payload []byte) ([]byte, *lambdarun.FunctionError, error) {
	return f(ctx, payload)
}

func answer(resp string) Invoker {
	return invokerFunc(func(context.Context, []byte) ([]byte, *lambdarun.FunctionError, error) { return []byte(resp), nil, nil })
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		fn          Invoker
		method      string
		target      string
		body        string
		wantStatus  int
		wantBody    string
		wantHeaders map[string][]string
	}{
		{
			name: "structured response", method: "POST", target: "/v1/messages", body: "{}",
			fn:         answer(`{"statusCode":202,"headers":{"Content-Type":"application/json","Location":"/v1/messages/1"},"multiValueHeaders":{"X-Multi":["a","b"]},"cookies":["s=1; Path=/"],"body":"{\"id\":\"1\"}"}`),
			wantStatus: 202, wantBody: `{"id":"1"}`,
			wantHeaders: map[string][]string{"Location": {"/v1/messages/1"}, "X-Multi": {"a", "b"}, "Set-Cookie": {"s=1; Path=/"}, "Content-Type": {"application/json"}},
		},
		{
			name: "base64 response", method: "GET", target: "/v1/messages/1",
			fn:         answer(`{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"body":"` + base64.StdEncoding.EncodeToString([]byte("\x00\x01")) + `","isBase64Encoded":true}`),
			wantStatus: 200, wantBody: "\x00\x01",
		},
		{
			name: "plain JSON response", method: "GET", target: "/v1/messages/1",
			fn:         answer(`{"hello":"world"}`),
			wantStatus: 200, wantBody: `{"hello":"world"}`, wantHeaders: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name: "function error", method: "GET", target: "/v1/messages/1",
			fn: invokerFunc(func(context.Context, []byte) ([]byte, *lambdarun.FunctionError, error) {
				return nil, &lambdarun.FunctionError{Type: "errorString", Message: "boom"}, nil
			}),
			wantStatus: 502, wantBody: `{"message":"Internal Server Error"}`,
		},
		{name: "response not JSON", method: "GET", target: "/v1/messages/1", fn: answer(`not json`), wantStatus: 502, wantBody: `{"message":"Internal Server Error"}`},
		{name: "bad base64", method: "GET", target: "/v1/messages/1", fn: answer(`{"statusCode":200,"body":"***","isBase64Encoded":true}`), wantStatus: 502},
		{name: "bad status", method: "GET", target: "/v1/messages/1", fn: answer(`{"statusCode":42}`), wantStatus: 502},
		{
			name: "invoke failed", method: "GET", target: "/v1/messages/1",
			fn: invokerFunc(func(context.Context, []byte) ([]byte, *lambdarun.FunctionError, error) {
				return nil, nil, errors.New("no process")
			}),
			wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`,
		},
		{
			name: "integration timeout", method: "GET", target: "/v1/messages/1",
			fn: invokerFunc(func(ctx context.Context, _ []byte) ([]byte, *lambdarun.FunctionError, error) {
				return nil, nil, context.DeadlineExceeded
			}),
			wantStatus: 503, wantBody: `{"message":"Service Unavailable"}`,
		},
		{
			name: "event above Lambda's limit", method: "POST", target: "/v1/messages",
			fn: invokerFunc(func(context.Context, []byte) ([]byte, *lambdarun.FunctionError, error) {
				return nil, nil, lambdarun.ErrPayloadTooLarge
			}),
			wantStatus: 413, wantBody: `{"message":"Request Entity Too Large"}`,
		},
		{name: "no route", method: "GET", target: "/v2/other", fn: answer(`{}`), wantStatus: 404, wantBody: `{"message":"Not Found"}`},
		{name: "wrong method", method: "DELETE", target: "/v1/messages", fn: answer(`{}`), wantStatus: 404},
		{name: "body too large", method: "POST", target: "/v1/messages", body: strings.Repeat("x", MaxBody+1), fn: answer(`{}`), wantStatus: 413, wantBody: `{"message":"Request Entity Too Large"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(New(tt.fn, routes))
			t.Cleanup(srv.Close)
			req, err := http.NewRequest(tt.method, srv.URL+tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			_, _ = io.Copy(&body, resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body.String())
			}
			if tt.wantBody != "" && body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", body.String(), tt.wantBody)
			}
			for k, v := range tt.wantHeaders {
				if got := resp.Header.Values(k); !reflect.DeepEqual(got, v) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if resp.Header.Get("Apigw-Requestid") == "" {
				t.Error("no apigw-requestid header")
			}
		})
	}
}

// TestServeHTTPInProcess runs a real aws-lambda-go handler behind the API, event to response.
func TestServeHTTPInProcess(t *testing.T) {
	t.Parallel()
	fn := lambdarun.NewInProcess(func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		out, _ := json.Marshal(map[string]string{"route": e.RouteKey, "id": e.PathParameters["id"], "q": e.QueryStringParameters["q"]})
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(out)}, nil
	})
	srv := httptest.NewServer(New(fn, routes))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/v1/messages/abc?q=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"route": "GET /v1/messages/{id}", "id": "abc", "q": "1"}
	if resp.StatusCode != 200 || !reflect.DeepEqual(got, want) {
		t.Errorf("status %d body %v, want 200 %v", resp.StatusCode, got, want)
	}
}
