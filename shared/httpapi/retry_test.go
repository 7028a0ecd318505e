package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

func retrySetup(t *testing.T) *bundle {
	t.Helper()
	b := setup(t)
	b.h.Reopener = b.store
	return b
}

// ended records a message that ended in status after one attempt answered code, keeping a copy
// when keep is set, and returns its id and the copy.
func (b *bundle) ended(t *testing.T, status message.Status, code int, keep bool) (string, string) {
	t.Helper()
	ctx := context.Background()
	now := b.clock.Now()
	id := message.NewID(now)
	if err := b.store.Create(ctx, message.Record{ID: id, Fingerprint: "sha256:f", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	body := `{"id":"` + id + `","target":{"url":"` + okURL + `"},"payload":{ "user_id" : "1" },"fingerprint":"sha256:f"}`
	if status == message.Accepted {
		return id, body
	}
	if _, err := b.store.Claim(ctx, id, store.Claim{Now: now, Lease: time.Minute, Token: "tok"}); err != nil {
		t.Fatal(err)
	}
	o := store.Outcome{Now: now, Status: status, Token: "tok", Attempt: &message.Attempt{At: now, StatusCode: code, DurationMS: 4}}
	if keep {
		o.Keep = []byte(body)
	}
	if _, err := b.store.Finish(ctx, id, o); err != nil {
		t.Fatal(err)
	}
	return id, body
}

func TestRetryFailedMessage(t *testing.T) {
	t.Parallel()
	b := retrySetup(t)
	id, body := b.ended(t, message.Failed, 404, true)
	r := b.do(t, http.MethodPost, "/v1/messages/"+id+"/retry", "")
	if r.status != http.StatusAccepted || r.headers["Location"] != "/v1/messages/"+id {
		t.Fatalf("retry = %d %v %s, want 202 with the message's Location", r.status, r.headers, r.body)
	}
	if got := decode[accepted](t, r); got.ID != id || got.Status != message.Accepted {
		t.Errorf("body = %+v", got)
	}
	if es := b.prod.Entries(); len(es) != 1 || es[0].Body != body || es[0].DelaySeconds != 0 {
		t.Fatalf("queued %+v, want exactly the kept copy, no delay", es)
	}
	v := decode[View](t, b.do(t, http.MethodGet, "/v1/messages/"+id, ""))
	if v.Status != message.Accepted || v.Attempts != 0 || v.LastAttempt != nil || len(v.History) != 1 || v.History[0].StatusCode != 404 {
		t.Errorf("GET after retry = %+v, want accepted, 0 attempts, the 404 in history", v)
	}
	// While the reopened copy waits in the queue, the message is live.
	if _, err := b.store.Claim(context.Background(), id, store.Claim{Now: b.clock.Now(), Lease: time.Minute, Token: "tok-2"}); err != nil {
		t.Fatal(err)
	}
	r = b.do(t, http.MethodPost, "/v1/messages/"+id+"/retry", "")
	if r.status != http.StatusConflict || decode[ingest.ErrorBody](t, r).Error.Code != CodeNotFinal {
		t.Errorf("retry while delivering = %d %s, want 409 not_final", r.status, r.body)
	}
}

// A retry whose queue send failed answers 503, leaves the message reopened, and the same request
// made again queues the copy.
func TestRetrySendFailedThenAgain(t *testing.T) {
	t.Parallel()
	b := retrySetup(t)
	id, body := b.ended(t, message.Expired, 503, true)
	b.prod.Fail = func(message.Envelope) bool { return true }
	r := b.do(t, http.MethodPost, "/v1/messages/"+id+"/retry", "")
	if r.status != http.StatusServiceUnavailable || r.headers["Retry-After"] == "" || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeUnavailable {
		t.Fatalf("retry with the queue down = %d %v %s, want 503 with Retry-After", r.status, r.headers, r.body)
	}
	b.prod.Fail = nil
	if r = b.do(t, http.MethodPost, "/v1/messages/"+id+"/retry", `{}`); r.status != http.StatusAccepted {
		t.Fatalf("retry again = %d %s, want 202", r.status, r.body)
	}
	if es := b.prod.Entries(); len(es) != 1 || es[0].Body != body {
		t.Fatalf("queued %+v, want the kept copy once", es)
	}
}

func TestRetryFanoutDelivery(t *testing.T) {
	t.Parallel()
	b := retrySetup(t)
	ctx := context.Background()
	now := b.clock.Now()
	msgID := message.NewID(now)
	ep := message.NewPrefixedID(message.EndpointIDPrefix, now)
	dlv := message.DeliveryID(msgID, ep)
	body := `{"id":"` + dlv + `","message_id":"` + msgID + `","endpoint_id":"` + ep + `","payload":1,"fingerprint":"sha256:f"}`
	n := &message.Record{MessageID: msgID, EndpointID: ep, Fingerprint: "sha256:f", CreatedAt: now}
	if _, err := b.store.Finish(ctx, dlv, store.Outcome{Now: now, Status: message.Failed, Fingerprint: "sha256:f", New: n, Keep: []byte(body),
		Attempt: &message.Attempt{At: now, Error: message.ReasonEndpointDisabled}}); err != nil {
		t.Fatal(err)
	}
	r := b.do(t, http.MethodPost, "/v1/messages/"+msgID+"/retry", `{"endpoint_id":"`+ep+`"}`)
	if r.status != http.StatusAccepted || r.headers["Location"] != "/v1/messages/"+msgID || decode[accepted](t, r).ID != dlv {
		t.Fatalf("retry of a delivery = %d %v %s, want 202 with the delivery's id and the message's Location", r.status, r.headers, r.body)
	}
	if es := b.prod.Entries(); len(es) != 1 || es[0].Body != body {
		t.Fatalf("queued %+v, want the delivery's kept copy", es)
	}
	other := message.NewPrefixedID(message.EndpointIDPrefix, now.Add(time.Second))
	r = b.do(t, http.MethodPost, "/v1/messages/"+msgID+"/retry", `{"endpoint_id":"`+other+`"}`)
	if r.status != http.StatusNotFound || decode[ingest.ErrorBody](t, r).Error.Code != CodeNotFound {
		t.Errorf("retry of no such delivery = %d %s, want 404", r.status, r.body)
	}
}

func TestRetryRefused(t *testing.T) {
	t.Parallel()
	b := retrySetup(t)
	accepted, _ := b.ended(t, message.Accepted, 0, false)
	delivered, _ := b.ended(t, message.Delivered, 200, false)
	noCopy, _ := b.ended(t, message.Failed, 404, false)
	failed, _ := b.ended(t, message.Failed, 404, true)
	ep := message.NewPrefixedID(message.EndpointIDPrefix, t0)
	for _, tc := range []struct {
		name, id, body string
		hdrs           []string
		status         int
		code           string
	}{
		{"accepted", accepted, "", nil, http.StatusConflict, CodeNotFinal},
		{"delivered", delivered, "", nil, http.StatusConflict, CodeDelivered},
		{"no copy", noCopy, "", nil, http.StatusConflict, CodeNoCopy},
		{"unknown id", message.NewID(t0), "", nil, http.StatusNotFound, CodeNotFound},
		{"not an id", "msg_nope", "", nil, http.StatusNotFound, CodeNotFound},
		{"not a fan-out", failed, `{"endpoint_id":"` + ep + `"}`, nil, http.StatusNotFound, CodeNotFound},
		{"unknown field", failed, `{"endpoint":"` + ep + `"}`, nil, http.StatusBadRequest, ingest.CodeValidationFailed},
		{"endpoint id a number", failed, `{"endpoint_id":1}`, nil, http.StatusBadRequest, ingest.CodeValidationFailed},
		{"endpoint id malformed", failed, `{"endpoint_id":"ep_x"}`, nil, http.StatusBadRequest, ingest.CodeValidationFailed},
		{"array", failed, `[]`, nil, http.StatusBadRequest, ingest.CodeValidationFailed},
		{"broken JSON", failed, `{"endpoint_id":`, nil, http.StatusBadRequest, ingest.CodeInvalidJSON},
		{"duplicate key", failed, `{"endpoint_id":null,"endpoint_id":null}`, nil, http.StatusBadRequest, ingest.CodeInvalidJSON},
		{"not JSON", failed, `endpoint_id=x`, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, CodeUnsupportedType},
		{"too large", failed, `{"endpoint_id":null` + strings.Repeat(" ", maxRetryBodyBytes) + `}`, nil, http.StatusRequestEntityTooLarge, CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(t, http.MethodPost, "/v1/messages/"+tc.id+"/retry", tc.body, tc.hdrs...)
			if r.status != tc.status || decode[ingest.ErrorBody](t, r).Error.Code != tc.code {
				t.Errorf("retry = %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
	if n := len(b.prod.Entries()); n != 0 {
		t.Errorf("%d copies queued by refused retries, want none", n)
	}
	if rec, _ := b.store.Get(context.Background(), failed); rec.Status != message.Failed {
		t.Errorf("the failed message is %s after refused retries, want failed", rec.Status)
	}
	if r := b.do(t, http.MethodGet, "/v1/messages/"+failed+"/retry", ""); r.status != http.StatusMethodNotAllowed || r.headers["Allow"] != http.MethodPost {
		t.Errorf("GET retry = %d %v, want 405 allowing POST", r.status, r.headers)
	}
}

// reopenDown is a store whose reopens cannot reach it.
type reopenDown struct{ *store.Memory }

func (reopenDown) Reopen(context.Context, string, store.Reopen) (message.Record, error) {
	return message.Record{}, errors.New("connection refused")
}

func TestRetryStoreUnreachable(t *testing.T) {
	t.Parallel()
	b := retrySetup(t)
	id, _ := b.ended(t, message.Failed, 404, true)
	b.h.Reopener = reopenDown{b.store}
	r := b.do(t, http.MethodPost, "/v1/messages/"+id+"/retry", "")
	if r.status != http.StatusServiceUnavailable || r.headers["Retry-After"] == "" {
		t.Errorf("retry with the store down = %d %v %s, want 503 with Retry-After", r.status, r.headers, r.body)
	}
}

// Without a Reopener the route does not exist.
func TestRetryRouteOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := events.APIGatewayV2HTTPRequest{RawPath: "/v1/messages/" + message.NewID(t0) + "/retry"}
	req.RequestContext.HTTP.Method = http.MethodPost
	resp, _ := b.h.Handle(context.Background(), req)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("retry without a Reopener = %d, want 404", resp.StatusCode)
	}
}

func FuzzParseRetry(f *testing.F) {
	for _, s := range []string{"", " ", "{}", `{"endpoint_id":null}`, `{"endpoint_id":"ep_06h3230102tq4gpdzyxsvjwpec"}`,
		`{"endpoint_id":"ep_x"}`, `{"x":1}`, `[]`, `{"endpoint_id":1}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ep, err := ParseRetry(body)
		var invalid *message.InvalidError
		switch {
		case err != nil && !errors.As(err, &invalid):
			t.Fatalf("error %v is not an *InvalidError", err)
		case err != nil && ep != "":
			t.Fatalf("endpoint id %q with an error", ep)
		case err == nil && ep != "" && !message.ValidEndpointID(ep):
			t.Fatalf("endpoint id %q is not valid", ep)
		}
	})
}
