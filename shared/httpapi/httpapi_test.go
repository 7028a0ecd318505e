package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

type bundle struct {
	store *store.Memory
	prod  *ingesttest.Producer
	clock *ingesttest.Clock
	h     *Handler
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{store: &store.Memory{}, prod: &ingesttest.Producer{}, clock: ingesttest.NewClock(t0)}
	b.h = &Handler{
		Enqueuer: &ingest.Enqueuer{Store: b.store, Producer: b.prod, Now: b.clock.Now, Logger: quiet},
		Records:  b.store,
		Now:      b.clock.Now,
		Logger:   quiet,
	}
	return b
}

type response struct {
	status  int
	headers map[string]string
	body    string
}

func (b *bundle) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	req := events.APIGatewayV2HTTPRequest{RawPath: path, Body: body, Headers: map[string]string{}}
	req.RequestContext.HTTP.Method = method
	req.RequestContext.Stage = "$default"
	if method == http.MethodPost {
		req.Headers["content-type"] = "application/json"
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "base64" {
			req.IsBase64Encoded = true
			req.Body = base64.StdEncoding.EncodeToString([]byte(body))
			continue
		}
		req.Headers[strings.ToLower(headers[i])] = headers[i+1]
	}
	resp, err := b.h.Handle(t.Context(), req)
	if err != nil {
		t.Fatalf("Handle returned an error (API Gateway would answer a bare 502): %v", err)
	}
	if resp.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(resp.Body)) {
		t.Fatalf("response is not JSON: %v %s", resp.Headers, resp.Body)
	}
	return response{resp.StatusCode, resp.Headers, resp.Body}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

const okURL = "https://hooks.example.com/push"

func msg(extra string) string {
	return `{"target":{"url":"` + okURL + `"},"payload":{"user_id":"1","message":"Hello"}` + extra + `}`
}

func msgTo(url string) string {
	return `{"target":{"url":` + fmt.Sprintf("%q", url) + `},"payload":1}`
}

func withHeaders(h string) string {
	return `{"target":{"url":"` + okURL + `","headers":` + h + `},"payload":1}`
}

func batch(ms ...string) string { return `{"messages":[` + strings.Join(ms, ",") + `]}` }

func repeat(m string, n int) string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = m
	}
	return batch(ms...)
}

func keyed(n int, prefix string) string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = msg(fmt.Sprintf(`,"idempotency_key":"%s-%d"`, prefix, i))
	}
	return batch(ms...)
}

// invalid lists requests that must be refused with a 4xx, the error code and the path of the
// first detail ("" when the answer has no details), and must change nothing.
var invalid = []struct {
	name   string
	path   string
	body   string
	hdrs   []string
	status int
	code   string
	field  string
}{
	// malformed JSON
	{"empty body", PathMessages, ``, nil, 400, ingest.CodeInvalidJSON, "body"},
	{"not JSON", PathMessages, `push it`, nil, 400, ingest.CodeInvalidJSON, "body"},
	{"truncated", PathMessages, `{"target":{"url":`, nil, 400, ingest.CodeInvalidJSON, "body"},
	{"trailing comma", PathMessages, `{"payload":1,}`, nil, 400, ingest.CodeInvalidJSON, "body"},
	{"trailing data", PathMessages, msg(``) + `{}`, nil, 400, ingest.CodeInvalidJSON, "body"},
	{"invalid UTF-8", PathMessages, "{\"target\":{\"url\":\"" + okURL + "\"},\"payload\":\"\xc3\x28\"}", nil, 400, ingest.CodeInvalidJSON, "body"},
	{"duplicate key", PathMessages, `{"target":{"url":"` + okURL + `"},"payload":1,"payload":2}`, nil, 400, ingest.CodeInvalidJSON, "body"},
	{"batch malformed", PathBatch, `{"messages":[`, nil, 400, ingest.CodeInvalidJSON, "body"},
	{"bad base64", PathMessages, "", []string{"base64", "", "x", ""}, 400, ingest.CodeInvalidJSON, ""},
	// wrong types
	{"body is an array", PathMessages, `[` + msg(``) + `]`, nil, 400, ingest.CodeValidationFailed, "body"},
	{"target is a string", PathMessages, `{"target":"` + okURL + `","payload":1}`, nil, 400, ingest.CodeValidationFailed, "target"},
	{"url is a number", PathMessages, `{"target":{"url":42},"payload":1}`, nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"headers is a list", PathMessages, withHeaders(`["X-A: 1"]`), nil, 400, ingest.CodeValidationFailed, "target.headers"},
	{"header value is a number", PathMessages, withHeaders(`{"X-A":1}`), nil, 400, ingest.CodeValidationFailed, "target.headers.X-A"},
	{"delay is a string", PathMessages, msg(`,"delay_seconds":"5"`), nil, 400, ingest.CodeValidationFailed, "delay_seconds"},
	{"key is a number", PathMessages, msg(`,"idempotency_key":7`), nil, 400, ingest.CodeValidationFailed, "idempotency_key"},
	{"messages is an object", PathBatch, `{"messages":{}}`, nil, 400, ingest.CodeValidationFailed, "messages"},
	// missing fields
	{"no target", PathMessages, `{"payload":1}`, nil, 400, ingest.CodeValidationFailed, "target"},
	{"no url", PathMessages, `{"target":{},"payload":1}`, nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"no payload", PathMessages, `{"target":{"url":"` + okURL + `"}}`, nil, 400, ingest.CodeValidationFailed, "payload"},
	{"null payload", PathMessages, `{"target":{"url":"` + okURL + `"},"payload":null}`, nil, 400, ingest.CodeValidationFailed, "payload"},
	{"no messages", PathBatch, `{}`, nil, 400, ingest.CodeValidationFailed, "messages"},
	// unknown fields
	{"unknown field", PathMessages, msg(`,"priority":"high"`), nil, 400, ingest.CodeValidationFailed, "priority"},
	{"unknown target field", PathMessages, `{"target":{"url":"` + okURL + `","method":"PUT"},"payload":1}`, nil, 400, ingest.CodeValidationFailed, "target.method"},
	{"unknown batch field", PathBatch, `{"messages":[` + msg(``) + `],"async":true}`, nil, 400, ingest.CodeValidationFailed, "async"},
	// sizes and counts
	{"payload over the limit in a batch", PathBatch, batch(msg(``), `{"target":{"url":"`+okURL+`"},"payload":"`+strings.Repeat("a", message.DefaultMaxPayloadBytes)+`"}`), nil, 400, ingest.CodeValidationFailed, "messages[1].payload"},
	{"body over the limit", PathMessages, `{"target":{"url":"` + okURL + `"},"payload":"` + strings.Repeat("a", message.DefaultMaxPayloadBytes+message.BodyOverheadBytes) + `"}`, nil, 413, CodeTooLarge, ""},
	{"base64 body over the limit", PathMessages, `{"target":{"url":"` + okURL + `"},"payload":"` + strings.Repeat("a", message.DefaultMaxPayloadBytes+message.BodyOverheadBytes) + `"}`, []string{"base64", ""}, 413, CodeTooLarge, ""},
	{"batch body over the limit", PathBatch, strings.Repeat(" ", message.MaxBatchBodyBytes+1), nil, 413, CodeTooLarge, ""},
	{"501 messages", PathBatch, repeat(msg(``), 501), nil, 400, ingest.CodeValidationFailed, "messages"},
	{"empty batch", PathBatch, batch(), nil, 400, ingest.CodeValidationFailed, "messages"},
	// content type
	{"form content type", PathMessages, msg(``), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, CodeUnsupportedType, ""},
	{"text content type", PathMessages, msg(``), []string{"Content-Type", "text/plain"}, 415, CodeUnsupportedType, ""},
	{"latin-1 JSON", PathMessages, msg(``), []string{"Content-Type", "application/json; charset=iso-8859-1"}, 415, CodeUnsupportedType, ""},
	{"gzip body", PathMessages, msg(``), []string{"Content-Encoding", "gzip"}, 415, CodeUnsupportedType, ""},
	{"no content type", PathBatch, batch(msg(``)), []string{"Content-Type", ""}, 415, CodeUnsupportedType, ""},
	// bad URLs
	{"relative URL", PathMessages, msgTo("/push"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"ftp URL", PathMessages, msgTo("ftp://hooks.example.com/x"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"plain http", PathMessages, msgTo("http://hooks.example.com/x"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"user-info", PathMessages, msgTo("https://admin:pw@hooks.example.com/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"over-long URL", PathMessages, msgTo("https://hooks.example.com/" + strings.Repeat("p", 2048)), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"loopback", PathMessages, msgTo("https://127.0.0.1/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"loopback decimal", PathMessages, msgTo("https://2130706433/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"loopback octal", PathMessages, msgTo("https://017700000001/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"loopback hex short", PathMessages, msgTo("https://0x7f.1/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"loopback trailing dot", PathMessages, msgTo("https://127.0.0.1.:443/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"private 10/8", PathMessages, msgTo("https://10.1.2.3/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"private 192.168", PathMessages, msgTo("https://192.168.1.1/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"metadata", PathMessages, msgTo("https://169.254.169.254/latest/meta-data/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"metadata hex", PathMessages, msgTo("https://0xa9fea9fe/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"metadata IPv4-mapped", PathMessages, msgTo("https://[::ffff:169.254.169.254]/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"IPv6 loopback", PathMessages, msgTo("https://[::1]:8443/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"IPv6 unique local", PathMessages, msgTo("https://[fd00:ec2::254]/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"localhost", PathMessages, msgTo("https://localhost:8443/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"sub.localhost", PathMessages, msgTo("https://app.localhost/"), nil, 400, ingest.CodeValidationFailed, "target.url"},
	{"bad URL in a batch", PathBatch, batch(msg(``), msg(``), msgTo("https://10.0.0.1/")), nil, 400, ingest.CodeValidationFailed, "messages[2].target.url"},
	// header injection
	{"header CRLF", PathMessages, withHeaders(`{"X-A":"1\r\nX-Injected: 1"}`), nil, 400, ingest.CodeValidationFailed, "target.headers.X-A"},
	{"header LF", PathMessages, withHeaders(`{"X-A":"1\nX-B: 2"}`), nil, 400, ingest.CodeValidationFailed, "target.headers.X-A"},
	{"header name not a token", PathMessages, withHeaders(`{"X A":"1"}`), nil, 400, ingest.CodeValidationFailed, "target.headers.X A"},
	{"Host header", PathMessages, withHeaders(`{"Host":"internal.local"}`), nil, 400, ingest.CodeValidationFailed, "target.headers.Host"},
	{"Content-Length header", PathMessages, withHeaders(`{"content-length":"5"}`), nil, 400, ingest.CodeValidationFailed, "target.headers.content-length"},
	{"Transfer-Encoding header", PathMessages, withHeaders(`{"Transfer-Encoding":"chunked"}`), nil, 400, ingest.CodeValidationFailed, "target.headers.Transfer-Encoding"},
	{"signature header", PathMessages, withHeaders(`{"webhook-signature":"v1,abc"}`), nil, 400, ingest.CodeValidationFailed, "target.headers.webhook-signature"},
	// idempotency keys
	{"empty key", PathMessages, msg(`,"idempotency_key":""`), nil, 400, ingest.CodeValidationFailed, "idempotency_key"},
	{"key too long", PathMessages, msg(`,"idempotency_key":"` + strings.Repeat("k", 256) + `"`), nil, 400, ingest.CodeValidationFailed, "idempotency_key"},
	{"key not ASCII", PathMessages, msg(`,"idempotency_key":"clé"`), nil, 400, ingest.CodeValidationFailed, "idempotency_key"},
	{"header key not ASCII", PathMessages, msg(``), []string{"Idempotency-Key", "cl\u00e9"}, 400, ingest.CodeValidationFailed, "Idempotency-Key"},
	{"header and body keys differ", PathMessages, msg(`,"idempotency_key":"a"`), []string{"Idempotency-Key", "b"}, 400, ingest.CodeValidationFailed, "idempotency_key"},
	{"key twice in a batch", PathBatch, batch(msg(`,"idempotency_key":"a"`), msg(`,"idempotency_key":"a"`)), nil, 400, ingest.CodeValidationFailed, "messages[1].idempotency_key"},
	// delay and expiry
	{"negative delay", PathMessages, msg(`,"delay_seconds":-1`), nil, 400, ingest.CodeValidationFailed, "delay_seconds"},
	{"delay over 900", PathMessages, msg(`,"delay_seconds":901`), nil, 400, ingest.CodeValidationFailed, "delay_seconds"},
	{"fractional delay", PathMessages, msg(`,"delay_seconds":2.5`), nil, 400, ingest.CodeValidationFailed, "delay_seconds"},
	{"expiry not RFC 3339", PathMessages, msg(`,"expires_at":"01/12/2026"`), nil, 400, ingest.CodeValidationFailed, "expires_at"},
	{"expiry in the past", PathMessages, msg(`,"expires_at":"2026-11-24T09:59:59Z"`), nil, 400, ingest.CodeValidationFailed, "expires_at"},
	{"expiry as epoch", PathMessages, msg(`,"expires_at":1764547200`), nil, 400, ingest.CodeValidationFailed, "expires_at"},
}

func TestInvalidRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	if len(invalid) < 40 {
		t.Fatalf("only %d invalid inputs", len(invalid))
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			r := b.do(t, http.MethodPost, tt.path, tt.body, tt.hdrs...)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			e := decode[ingest.ErrorBody](t, r).Error
			if e.Code != tt.code || e.Message == "" {
				t.Fatalf("error = %+v, want code %s", e, tt.code)
			}
			if tt.field != "" && (len(e.Details) == 0 || e.Details[0].Path != tt.field || e.Details[0].Reason == "") {
				t.Fatalf("details = %+v, want the first at %s", e.Details, tt.field)
			}
			if writes, reads := b.store.Counts(); writes != 0 || reads != 0 {
				t.Fatalf("store used: %d writes, %d reads", writes, reads)
			}
			if calls := b.prod.Calls(); calls != 0 {
				t.Fatalf("producer called %d times", calls)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	id := message.IDForKey("x")
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/", 404, ""},
		{"GET", "/v1", 404, ""},
		{"POST", "/v1/messages/", 404, ""},
		{"POST", "/v2/messages", 404, ""},
		{"GET", "/v1/messages/" + id + "/attempts", 404, ""},
		{"GET", "/v1/messages", 405, "POST"},
		{"PUT", "/v1/messages", 405, "POST"},
		{"GET", "/v1/messages/batch", 405, "POST"},
		{"DELETE", "/v1/messages/" + id, 405, "GET"},
		{"POST", "/v1/messages/" + id, 405, "GET"},
	}
	for _, tt := range tests {
		b := setup(t)
		r := b.do(t, tt.method, tt.path, "")
		if r.status != tt.status || r.headers["Allow"] != tt.allow {
			t.Errorf("%s %s = %d Allow %q, want %d Allow %q", tt.method, tt.path, r.status, r.headers["Allow"], tt.status, tt.allow)
		}
		want := CodeNotFound
		if tt.status == 405 {
			want = CodeMethodNotAllowed
		}
		if e := decode[ingest.ErrorBody](t, r).Error; e.Code != want {
			t.Errorf("%s %s code = %q, want %q", tt.method, tt.path, e.Code, want)
		}
	}
}

func TestNamedStagePrefix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := events.APIGatewayV2HTTPRequest{RawPath: "/prod/v1/messages", Body: msg(``), Headers: map[string]string{"content-type": "application/json"}}
	req.RequestContext.HTTP.Method = "POST"
	req.RequestContext.Stage = "prod"
	resp, err := b.h.Handle(t.Context(), req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /prod/v1/messages = %d %v %s", resp.StatusCode, err, resp.Body)
	}
	if loc := resp.Headers["Location"]; !strings.HasPrefix(loc, "/prod/v1/messages/msg_") {
		t.Fatalf("Location = %q, want it under the stage", loc)
	}
}

func TestPostOneThenGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(t, "POST", PathMessages, msg(`,"delay_seconds":5,"expires_at":"2026-12-01T00:00:00Z"`), "Content-Type", "application/json; charset=UTF-8")
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := decode[map[string]any](t, r)
	id, _ := got["id"].(string)
	if !message.ValidID(id) || got["status"] != "accepted" || len(got) != 2 {
		t.Fatalf("body = %s", r.body)
	}
	if r.headers["Location"] != "/v1/messages/"+id || r.headers["Idempotent-Replayed"] != "" {
		t.Fatalf("headers = %v", r.headers)
	}
	if calls, n := b.prod.Calls(), len(b.prod.Entries()); calls != 1 || n != 1 {
		t.Fatalf("producer: %d calls, %d entries", calls, n)
	}
	if d := b.prod.Entries()[0].DelaySeconds; d != 5 {
		t.Fatalf("delay = %d", d)
	}

	g := b.do(t, "GET", r.headers["Location"], "")
	if g.status != http.StatusOK {
		t.Fatalf("GET = %d %s", g.status, g.body)
	}
	want := `{"id":"` + id + `","status":"accepted","attempts":0,"created_at":"2026-11-24T10:00:00Z","updated_at":"2026-11-24T10:00:00Z",` +
		`"delivered_at":null,"expires_at":"2026-12-01T00:00:00Z","target_host":"hooks.example.com","last_attempt":null}`
	if g.body != want {
		t.Fatalf("GET body\n%s\nwant\n%s", g.body, want)
	}

	// After a delivery the state and last attempt show.
	at := t0.Add(time.Minute)
	if _, err := b.store.Claim(t.Context(), id, store.Claim{Now: at, Lease: time.Minute, Token: "w"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Finish(t.Context(), id, store.Outcome{Now: at, Status: message.Delivered, Token: "w", Attempt: &message.Attempt{At: at, StatusCode: 204, DurationMS: 12}}); err != nil {
		t.Fatal(err)
	}
	v := decode[View](t, b.do(t, "GET", "/v1/messages/"+id, ""))
	if v.Status != message.Delivered || v.Attempts != 1 || v.DeliveredAt == nil || !v.DeliveredAt.Equal(at) || v.LastAttempt == nil || v.LastAttempt.StatusCode != 204 {
		t.Fatalf("view = %+v", v)
	}
}

func TestGetNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"nope", "msg_", "msg_%2e%2e", "MSG_" + message.IDForKey("k")[4:], message.IDForKey("k") + "0"} {
		r := b.do(t, "GET", "/v1/messages/"+id, "")
		if r.status != http.StatusNotFound {
			t.Fatalf("GET %s = %d", id, r.status)
		}
	}
	if _, reads := b.store.Counts(); reads != 0 {
		t.Fatalf("ids that cannot be ours cost %d reads", reads)
	}
	r := b.do(t, "GET", "/v1/messages/"+message.IDForKey("never"), "")
	if r.status != http.StatusNotFound || decode[ingest.ErrorBody](t, r).Error.Code != CodeNotFound {
		t.Fatalf("GET unknown id = %d %s", r.status, r.body)
	}
	if _, reads := b.store.Counts(); reads != 1 {
		t.Fatalf("reads = %d, want 1", reads)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.do(t, "POST", PathMessages, msg(``), "Idempotency-Key", `"order-42-shipped"`)
	if first.status != http.StatusAccepted {
		t.Fatalf("first = %d %s", first.status, first.body)
	}
	id := decode[accepted](t, first).ID
	if id != message.IDForKey("order-42-shipped") {
		t.Fatalf("id %s is not derived from the header key", id)
	}

	// At once, as a client retrying a POST that timed out on its side: the original id, not an
	// error. The replay queues a copy of its own, since it cannot know whether the first one's
	// was queued.
	soon := b.do(t, "POST", PathMessages, msg(`,"idempotency_key":"order-42-shipped"`))
	if soon.status != http.StatusOK || soon.headers["Idempotent-Replayed"] != "true" || decode[accepted](t, soon).ID != id {
		t.Fatalf("replay at once = %d %v %s", soon.status, soon.headers, soon.body)
	}
	if n := len(b.prod.Entries()); n != 2 {
		t.Fatalf("%d queued, want 2 (a replay of an accepted item queues it again)", n)
	}

	b.clock.Advance(2 * time.Minute)
	replay := b.do(t, "POST", PathMessages, msg(`,"delay_seconds":3`), "Idempotency-Key", "order-42-shipped")
	if replay.status != http.StatusOK || replay.headers["Idempotent-Replayed"] != "true" || replay.headers["Location"] != "/v1/messages/"+id {
		t.Fatalf("replay = %d %v %s", replay.status, replay.headers, replay.body)
	}
	if a := decode[accepted](t, replay); a.ID != id || a.Status != message.Accepted {
		t.Fatalf("replay body = %s", replay.body)
	}
	if n := len(b.prod.Entries()); n != 2 {
		t.Fatalf("%d queued, want 2 (the item holds a replay's copy already)", n)
	}

	reuse := b.do(t, "POST", PathMessages, `{"target":{"url":"`+okURL+`"},"payload":{"other":true}}`, "Idempotency-Key", "order-42-shipped")
	if reuse.status != http.StatusUnprocessableEntity || decode[ingest.ErrorBody](t, reuse).Error.Code != ingest.CodeKeyReused {
		t.Fatalf("reuse = %d %s", reuse.status, reuse.body)
	}
	if n := len(b.prod.Entries()); n != 2 {
		t.Fatalf("%d queued after reuse, want 2", n)
	}
}

func TestConcurrentSameKey(t *testing.T) {
	t.Parallel()
	for range 10 {
		b := setup(t)
		var wg sync.WaitGroup
		rs := make([]response, 2)
		for i := range rs {
			wg.Go(func() { rs[i] = b.do(t, "POST", PathMessages, msg(``), "Idempotency-Key", "same") })
		}
		wg.Wait()
		// The second finds the item accepted and queues a copy of its own (delivery deduplicates).
		if n := len(b.prod.Entries()); n != 2 {
			t.Fatalf("%d queued, want 2", n)
		}
		if _, err := b.store.Get(t.Context(), message.IDForKey("same")); err != nil { // the one item exists
			t.Fatal(err)
		}
		statuses := []int{rs[0].status, rs[1].status}
		if !(statuses[0] == 202 && statuses[1] == 200 || statuses[0] == 200 && statuses[1] == 202) {
			t.Fatalf("statuses %v, want one 202 and one 200", statuses)
		}
	}
}

func TestDependencyFailures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.prod.Fail = func(message.Envelope) bool { return true }
	r := b.do(t, "POST", PathMessages, msg(``), "Idempotency-Key", "k")
	if r.status != http.StatusServiceUnavailable || r.headers["Retry-After"] == "" || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeUnavailable {
		t.Fatalf("= %d %v %s", r.status, r.headers, r.body)
	}
	if strings.Contains(r.body, "fake") {
		t.Fatalf("body leaks the internal error: %s", r.body)
	}
	if _, err := b.store.Get(t.Context(), message.IDForKey("k")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record left behind: %v", err)
	}
	rb := b.do(t, "POST", PathBatch, keyed(3, "b"))
	if rb.status != http.StatusServiceUnavailable || rb.headers["Retry-After"] == "" {
		t.Fatalf("batch all failed = %d %s", rb.status, rb.body)
	}

	// Only message 1 fails: 207, and the retry of exactly that one succeeds.
	failID := message.IDForKey("p-1")
	b.prod.Fail = func(env message.Envelope) bool { return env.ID == failID }
	rp := b.do(t, "POST", PathBatch, keyed(3, "p"))
	if rp.status != http.StatusMultiStatus || rp.headers["Retry-After"] == "" {
		t.Fatalf("partial = %d %s", rp.status, rp.body)
	}
	items := decode[ingest.Items](t, rp).Messages
	if items[0].Error != nil || items[2].Error != nil || items[1].Error == nil || items[1].Error.Code != ingest.CodeUnavailable || items[1].Status != "" {
		t.Fatalf("items = %s", rp.body)
	}
	b.prod.Fail = nil
	retry := b.do(t, "POST", PathBatch, batch(msg(`,"idempotency_key":"p-1"`)))
	if retry.status != http.StatusAccepted {
		t.Fatalf("retry = %d %s", retry.status, retry.body)
	}
}

func TestBatch500(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(t, "POST", PathBatch, keyed(500, "k"))
	if r.status != http.StatusAccepted {
		t.Fatalf("= %d %.300s", r.status, r.body)
	}
	items := decode[ingest.Items](t, r).Messages
	if len(items) != 500 {
		t.Fatalf("%d items", len(items))
	}
	for i, it := range items {
		if it.ID != message.IDForKey(fmt.Sprintf("k-%d", i)) || it.Status != message.Accepted || it.Replayed == nil || *it.Replayed || it.IdempotencyKey != fmt.Sprintf("k-%d", i) {
			t.Fatalf("item %d = %+v (out of order?)", i, it)
		}
	}
	if calls, n := b.prod.Calls(), len(b.prod.Entries()); calls > 50 || n != 500 {
		t.Fatalf("%d send calls for %d messages", calls, n)
	}
	writes, _ := b.store.Counts()
	if writes != 500 {
		t.Fatalf("%d writes", writes)
	}

	// Replay the batch once some items have moved on: nothing new is created, and only items
	// still accepted are queued again.
	for i := range 400 {
		id := message.IDForKey(fmt.Sprintf("k-%d", i))
		if _, err := b.store.Finish(t.Context(), id, store.Outcome{Now: t0, Status: message.Delivered}); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.Advance(2 * time.Minute)
	before := len(b.prod.Entries())
	r2 := b.do(t, "POST", PathBatch, keyed(500, "k"))
	if r2.status != http.StatusAccepted || r2.headers["Idempotent-Replayed"] != "true" {
		t.Fatalf("replay = %d %v", r2.status, r2.headers)
	}
	for i, it := range decode[ingest.Items](t, r2).Messages {
		want := message.Delivered
		if i >= 400 {
			want = message.Accepted
		}
		if it.Replayed == nil || !*it.Replayed || it.Status != want {
			t.Fatalf("replayed item %d = %+v", i, it)
		}
	}
	calls, after := b.prod.Calls(), len(b.prod.Entries())
	if after-before != 100 || calls != 2 {
		t.Fatalf("replay queued %d (want 100, the accepted ones) in %d calls in all", after-before, calls)
	}
	if w, _ := b.store.Counts(); w != 900+500+100 {
		t.Fatalf("writes = %d, want 1500 (500 creates, 400 finishes, 500 refused creates, 100 marks of the replays that queued a copy)", w)
	}
}

// acceptingSQS is an SQS API that queues every entry, for counting requests without an emulator.
type acceptingSQS struct{}

func (acceptingSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out, nil
}

func TestBatch500SendCallsWithTheRealProducer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	api := &ingesttest.CountingSQS{API: acceptingSQS{}}
	b.h.Enqueuer.Producer = queue.NewProducer(api, "https://sqs.example/q")
	r := b.do(t, "POST", PathBatch, keyed(500, "k"))
	if r.status != http.StatusAccepted {
		t.Fatalf("= %d %.200s", r.status, r.body)
	}
	t.Logf("500 messages: %d SendMessageBatch calls", api.Calls())
	if api.Calls() > 50 {
		t.Fatalf("%d SendMessageBatch calls for 500 messages, want at most 50", api.Calls())
	}
}

func TestAcceptedTransports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hdrs []string
	}{
		{"base64 body", []string{"base64", ""}},
		{"charset utf-8", []string{"Content-Type", "application/json; charset=utf-8"}},
		{"+json type", []string{"Content-Type", "application/vnd.acme+json"}},
		{"media type in any case", []string{"Content-Type", "Application/JSON"}},
		{"identity encoding", []string{"Content-Encoding", "identity"}},
		{"quoted idempotency key", []string{"Idempotency-Key", `"k-1"`}},
		{"same key in header and body", []string{"Idempotency-Key", "body-key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			body := msg(``)
			if tt.name == "same key in header and body" {
				body = msg(`,"idempotency_key":"body-key"`)
			}
			r := b.do(t, "POST", PathMessages, body, tt.hdrs...)
			if r.status != http.StatusAccepted {
				t.Fatalf("= %d %s", r.status, r.body)
			}
			if tt.name == "quoted idempotency key" && decode[accepted](t, r).ID != message.IDForKey("k-1") {
				t.Fatalf("the quoted key was not unquoted: %s", r.body)
			}
		})
	}
}

// panickingStore fails in the worst way: every call panics.
type panickingStore struct{}

func (panickingStore) Get(context.Context, string) (message.Record, error) { panic("boom") }

func (panickingStore) Create(context.Context, message.Record) error { panic("boom") }

func (panickingStore) Delete(context.Context, string, string) error { panic("boom") }

func (panickingStore) MarkReplayed(context.Context, string, string, time.Time) (message.Record, error) {
	panic("boom")
}

func TestPanicsBecome500s(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.h.Records = panickingStore{}
	b.h.Enqueuer.Store = panickingStore{}
	for _, r := range []response{
		b.do(t, "GET", "/v1/messages/"+message.IDForKey("k"), ""),
		b.do(t, "POST", PathMessages, msg(``)),
		b.do(t, "POST", PathBatch, keyed(3, "p")),
	} {
		e := decode[ingest.ErrorBody](t, r).Error
		if r.status != http.StatusInternalServerError || e.Code != ingest.CodeInternal || strings.Contains(r.body, "boom") {
			t.Fatalf("= %d %s", r.status, r.body)
		}
	}
	if calls := b.prod.Calls(); calls != 0 {
		t.Fatalf("producer called %d times", calls)
	}
}
