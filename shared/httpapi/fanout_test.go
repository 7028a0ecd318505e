package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/ingest/ingesttest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// fanDeliveries counts the calls that reach the deliveries store, and can fail them or answer
// counts of its own.
type fanDeliveries struct {
	store.Deliveries
	lists, counts atomic.Int64
	failList      error
	failCount     error
	countsAnswer  map[message.Status]int
}

func (f *fanDeliveries) ListMessageDeliveries(ctx context.Context, q store.MessageDeliveryQuery) (store.DeliveryPage, error) {
	f.lists.Add(1)
	if f.failList != nil {
		return store.DeliveryPage{}, f.failList
	}
	return f.Deliveries.ListMessageDeliveries(ctx, q)
}

func (f *fanDeliveries) CountDeliveries(ctx context.Context, messageID string) (map[message.Status]int, error) {
	f.counts.Add(1)
	if f.failCount != nil {
		return nil, f.failCount
	}
	if f.countsAnswer != nil {
		return f.countsAnswer, nil
	}
	return f.Deliveries.CountDeliveries(ctx, messageID)
}

// failingRecords fails every read of a record.
type failingRecords struct{ err error }

func (f failingRecords) Get(context.Context, string) (message.Record, error) {
	return message.Record{}, f.err
}

// fanBundle is a handler whose messages are recorded in records, and whose deliveries listings
// and counts read records through dl; the deliver function's writes are made with records' own
// calls, as the deliver function makes them.
type fanBundle struct {
	*epBundle
	records fanStore
	dl      *fanDeliveries
}

// fanStore is a record store that lists deliveries: either store.
type fanStore interface {
	store.Store
	store.Deliveries
}

var (
	_ fanStore = (*store.Memory)(nil)
	_ fanStore = (*store.DynamoDB)(nil)
)

func fanSetup(t *testing.T) *fanBundle {
	t.Helper()
	records := &store.Memory{}
	clock := ingesttest.NewClock(t0)
	return fanSetupWith(records, &ingest.Enqueuer{Store: records, Producer: &ingesttest.Producer{}, Now: clock.Now, Logger: quiet}, clock)
}

// fanSetupWith is fanSetup on records, accepting messages with enq.
func fanSetupWith(records fanStore, enq *ingest.Enqueuer, clock *ingesttest.Clock) *fanBundle {
	dl := &fanDeliveries{Deliveries: records}
	h := &Handler{Enqueuer: enq, Records: records, Deliveries: dl, Now: clock.Now, Logger: quiet}
	return &fanBundle{epBundle: &epBundle{clock: clock, h: h}, records: records, dl: dl}
}

// post accepts a message through the API and returns its id.
func (b *fanBundle) post(t *testing.T, body string) string {
	t.Helper()
	r := b.do(t, "POST", PathMessages, body)
	if r.status != 202 {
		t.Fatalf("post %s = %d %s", body, r.status, r.body)
	}
	return decode[accepted](t, r).ID
}

// expand claims the fan-out message id and records its expansion's progress: n deliveries
// queued, and the expansion ended with status when status is not Delivering.
func (b *fanBundle) expand(t *testing.T, id string, n int, status message.Status) {
	t.Helper()
	ctx := context.Background()
	token := "expand-" + id
	if _, err := b.records.Claim(ctx, id, store.Claim{Now: t0, Lease: time.Minute, Token: token}); err != nil {
		t.Fatal(err)
	}
	p := store.Progress{Now: t0.Add(time.Second), Token: token, Cursor: "ep_06h0td7azajsjqpb4b4ngtdr24", Deliveries: n}
	if status == message.Delivering {
		if _, err := b.records.Checkpoint(ctx, id, p); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := b.records.Finish(ctx, id, store.Outcome{Now: p.Now, Status: status, Token: token, Fanout: &p,
		Attempt: &message.Attempt{At: t0}}); err != nil {
		t.Fatal(err)
	}
}

// deliver makes the record of the delivery of message id to endpoint epID as the deliver
// function does, by its first claim (or, for a delivery ended without an attempt, its finish),
// and brings it to status.
func (b *fanBundle) deliver(t *testing.T, id, epID string, status message.Status) message.Record {
	t.Helper()
	ctx := context.Background()
	dlv := message.DeliveryID(id, epID)
	msg, err := b.records.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	newRec := &message.Record{MessageID: id, EndpointID: epID, Fingerprint: msg.Fingerprint, TargetHost: "hooks.example.com", CreatedAt: msg.CreatedAt}
	now := t0.Add(2 * time.Second)
	if status == message.Failed {
		rec, err := b.records.Finish(ctx, dlv, store.Outcome{Now: now, Status: message.Failed, Fingerprint: msg.Fingerprint, New: newRec,
			Attempt: &message.Attempt{At: now, Error: message.ReasonEndpointDisabled}})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	token := "claim-" + dlv
	rec, err := b.records.Claim(ctx, dlv, store.Claim{Now: now, Lease: time.Minute, Token: token, Fingerprint: msg.Fingerprint, New: newRec})
	if err != nil {
		t.Fatal(err)
	}
	if status == message.Delivering {
		return rec
	}
	o := store.Outcome{Now: now.Add(time.Second), Status: status, Token: token, Attempt: &message.Attempt{At: now, StatusCode: 500, DurationMS: 3}}
	if status == message.Delivered {
		o.Attempt.StatusCode = 200
	}
	if rec, err = b.records.Finish(ctx, dlv, o); err != nil {
		t.Fatal(err)
	}
	return rec
}

// epIDs returns n endpoint ids in id order.
func epIDs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, endpoint.NewID(t0.Add(time.Duration(i)*time.Millisecond)))
	}
	slices.Sort(out)
	return out
}

const fanoutBody = `{"event_type": "order.shipped", "tenant_id": "acme", "payload": {"order": 42}}`

// A fan-out's GET shows its event type, tenant and a summary with every state, in which the
// deliveries its expansion queued that have no record yet are accepted; the total is exact once
// the expansion is done, and never below the records counted while it runs.
func TestFanoutSummary(t *testing.T) {
	t.Parallel()
	eps := epIDs(5)
	tests := []struct {
		name       string
		body       string
		expanded   int            // deliveries the expansion queued
		status     message.Status // the expansion's state: "" not started
		deliveries []message.Status
		want       string
		counted    bool // whether the GET counts the records
	}{
		{name: "not expanded yet", body: fanoutBody,
			want: `{"total":0,"accepted":0,"delivering":0,"delivered":0,"retrying":0,"failed":0,"expired":0}`, counted: true},
		{name: "expanding, some received", body: fanoutBody, expanded: 3, status: message.Delivering, deliveries: []message.Status{message.Delivering},
			want: `{"total":3,"accepted":2,"delivering":1,"delivered":0,"retrying":0,"failed":0,"expired":0}`, counted: true},
		{name: "expanding, records past the checkpoint", body: fanoutBody, expanded: 1, status: message.Delivering,
			deliveries: []message.Status{message.Delivered, message.Retrying},
			want:       `{"total":2,"accepted":0,"delivering":0,"delivered":1,"retrying":1,"failed":0,"expired":0}`, counted: true},
		{name: "expanded, one not received", body: fanoutBody, expanded: 5, status: message.Delivered,
			deliveries: []message.Status{message.Delivered, message.Delivered, message.Failed, message.Retrying},
			want:       `{"total":5,"accepted":1,"delivering":0,"delivered":2,"retrying":1,"failed":1,"expired":0}`, counted: true},
		{name: "expanded, all received", body: fanoutBody, expanded: 2, status: message.Delivered,
			deliveries: []message.Status{message.Delivered, message.Expired},
			want:       `{"total":2,"accepted":0,"delivering":0,"delivered":1,"retrying":0,"failed":0,"expired":1}`, counted: true},
		{name: "no endpoint matched: nothing to count", body: fanoutBody, status: message.Delivered,
			want: `{"total":0,"accepted":0,"delivering":0,"delivered":0,"retrying":0,"failed":0,"expired":0}`},
		{name: "expansion failed part way", body: `{"event_type": "order.shipped", "payload": 1}`, expanded: 2, status: message.Failed,
			deliveries: []message.Status{message.Delivered},
			want:       `{"total":2,"accepted":1,"delivering":0,"delivered":1,"retrying":0,"failed":0,"expired":0}`, counted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := fanSetup(t)
			id := b.post(t, tt.body)
			if tt.status != "" {
				b.expand(t, id, tt.expanded, tt.status)
			}
			for i, st := range tt.deliveries {
				b.deliver(t, id, eps[i], st)
			}
			r := b.do(t, "GET", PathMessages+"/"+id, "")
			if r.status != 200 {
				t.Fatalf("GET = %d %s", r.status, r.body)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(r.body), &raw); err != nil {
				t.Fatal(err)
			}
			if got := string(raw["deliveries"]); got != tt.want {
				t.Errorf("deliveries %s, want %s", got, tt.want)
			}
			wantTenant := ""
			if strings.Contains(tt.body, "acme") {
				wantTenant = `"acme"`
			}
			if string(raw["event_type"]) != `"order.shipped"` || string(raw["tenant_id"]) != wantTenant {
				t.Errorf("event_type %s, tenant_id %s: %s", raw["event_type"], raw["tenant_id"], r.body)
			}
			wantStatus := tt.status
			if wantStatus == "" {
				wantStatus = message.Accepted
			}
			if v := decode[View](t, r); v.ID != id || v.Status != wantStatus {
				t.Errorf("id %s status %s, want %s %s", v.ID, v.Status, id, wantStatus)
			}
			if n := b.dl.counts.Load(); (n == 1) != tt.counted || n > 1 {
				t.Errorf("%d counts, want counted %v", n, tt.counted)
			}
		})
	}
}

// A message to a target or an endpoint keeps its GET shape: no summary, event type or tenant,
// and nothing counted.
func TestNotFanoutKeepsItsShape(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	id := b.post(t, msg(``))
	r := b.do(t, "GET", PathMessages+"/"+id, "")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &raw); err != nil || r.status != 200 {
		t.Fatalf("GET = %d %s", r.status, r.body)
	}
	want := []string{"attempts", "created_at", "delivered_at", "id", "last_attempt", "status", "target_host", "updated_at"}
	var got []string
	for k := range raw {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	if b.dl.counts.Load() != 0 {
		t.Errorf("a single target's GET counted deliveries")
	}
}

func TestFanoutSummaryFailures(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	id := b.post(t, fanoutBody)
	b.dl.failCount = errors.New("dial tcp 10.1.2.3:443: connection refused to table pushfn-prod")
	r := b.do(t, "GET", PathMessages+"/"+id, "")
	if r.status != 503 || r.headers["Retry-After"] == "" || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeUnavailable || strings.Contains(r.body, "pushfn-prod") {
		t.Errorf("GET with the count failing = %d %v %s", r.status, r.headers, r.body)
	}
	b.dl.failCount = nil
	b.dl.countsAnswer = map[message.Status]int{"lost": 1}
	if r := b.do(t, "GET", PathMessages+"/"+id, ""); r.status != 500 || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeInternal {
		t.Errorf("GET with a count in an unknown state = %d %s", r.status, r.body)
	}
	// Without a deliveries store, a fan-out's GET has no summary, and still answers.
	b.h.Deliveries = nil
	if r := b.do(t, "GET", PathMessages+"/"+id, ""); r.status != 200 || strings.Contains(r.body, `"deliveries"`) || !strings.Contains(r.body, `"event_type"`) {
		t.Errorf("GET without a deliveries store = %d %s", r.status, r.body)
	}
}

func TestSummaryOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		queued  int
		counts  map[message.Status]int
		want    Summary
		wantErr bool
	}{
		{name: "nothing", want: Summary{}},
		{name: "none received", queued: 4, want: Summary{Total: 4, Accepted: 4}},
		{name: "accepted records and missing ones add up", queued: 4, counts: map[message.Status]int{message.Accepted: 1, message.Delivered: 2},
			want: Summary{Total: 4, Accepted: 2, Delivered: 2}},
		{name: "more records than queued", queued: 1, counts: map[message.Status]int{message.Failed: 2, message.Expired: 1, message.Delivering: 1},
			want: Summary{Total: 4, Failed: 2, Expired: 1, Delivering: 1}},
		{name: "every state", queued: 6, counts: map[message.Status]int{message.Accepted: 1, message.Delivering: 1, message.Delivered: 1,
			message.Retrying: 1, message.Failed: 1, message.Expired: 1}, want: Summary{6, 1, 1, 1, 1, 1, 1}},
		{name: "unknown state", queued: 1, counts: map[message.Status]int{"done": 1}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := SummaryOf(message.Record{ID: "msg_x", FanoutDeliveries: tt.queued}, tt.counts)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
		if s := got; s.Total != s.Accepted+s.Delivering+s.Delivered+s.Retrying+s.Failed+s.Expired {
			t.Errorf("%s: total %d is not the sum of %+v", tt.name, s.Total, s)
		}
	}
}

// A fan-out's deliveries are listed in endpoint id order, each as its record's view with its
// message and endpoint, a page at a time to the end.
func TestMessageDeliveries(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	id := b.post(t, fanoutBody)
	other := b.post(t, `{"event_type": "order.shipped", "tenant_id": "acme", "payload": 2}`)
	b.expand(t, id, 5, message.Delivered)
	eps := epIDs(5)
	var want []View
	for i, st := range []message.Status{message.Delivered, message.Failed, message.Retrying, message.Delivering, message.Delivered} {
		want = append(want, ViewOf(b.deliver(t, id, eps[i], st)))
	}
	b.deliver(t, other, eps[0], message.Delivered)
	base := PathMessages + "/" + id + "/deliveries"
	r := b.do(t, "GET", base, "")
	if wantBody := reply(200, deliveryPage{Deliveries: want}, nil).Body; r.status != 200 || r.body != wantBody {
		t.Errorf("listing = %d\n %s\nwant\n %s", r.status, r.body, wantBody)
	}
	for i, v := range decode[deliveriesView](t, r).Deliveries {
		if v.MessageID != id || v.EndpointID != eps[i] || v.ID != message.DeliveryID(id, eps[i]) || v.TargetHost != "hooks.example.com" {
			t.Errorf("delivery %d: %+v", i, v)
		}
	}
	if !strings.Contains(r.body, `"message_id":"`+id+`"`) || !strings.Contains(r.body, `"error":"endpoint_disabled"`) {
		t.Errorf("listing lacks message_id or the disabled delivery's reason: %s", r.body)
	}
	// Pages of two follow each other to the end.
	var got []string
	target, pages := base+"?limit=2", 0
	for {
		p := decode[deliveriesView](t, b.do(t, "GET", target, ""))
		pages++
		got = append(got, ids(p.Deliveries)...)
		if p.NextCursor == nil {
			break
		}
		target = base + "?limit=2&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if !slices.Equal(got, ids(want)) || pages != 3 {
		t.Errorf("%d pages of %v, want 3 of %v", pages, got, ids(want))
	}
	// With no query string, API Gateway may give only the parameters map.
	req := events.APIGatewayV2HTTPRequest{RawPath: base, QueryStringParameters: map[string]string{"limit": "1"}}
	req.RequestContext.HTTP.Method = "GET"
	resp, _ := b.h.Handle(t.Context(), req)
	if p := decode[deliveriesView](t, response{body: resp.Body}); !slices.Equal(ids(p.Deliveries), ids(want[:1])) || p.NextCursor == nil {
		t.Errorf("parameters map: %s", resp.Body)
	}
}

// A fan-out with no delivery yet lists none; an unknown message, and one that is not a fan-out,
// have no listing (404); ids that cannot be a message's are 404 without a lookup.
func TestMessageDeliveriesNotFound(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	fan := b.post(t, fanoutBody)
	if r := b.do(t, "GET", PathMessages+"/"+fan+"/deliveries", ""); r.status != 200 || r.body != `{"deliveries":[],"next_cursor":null}` {
		t.Errorf("fan-out without deliveries = %d %s", r.status, r.body)
	}
	single := b.post(t, msg(``))
	r := b.do(t, "GET", PathMessages+"/"+single+"/deliveries", "")
	if e := decode[ingest.ErrorBody](t, r).Error; r.status != 404 || e.Code != CodeNotFound || !strings.Contains(e.Message, "not a fan-out") {
		t.Errorf("message to a target = %d %s", r.status, r.body)
	}
	if r := b.do(t, "GET", PathMessages+"/"+message.NewID(t0)+"/deliveries", ""); r.status != 404 || decode[ingest.ErrorBody](t, r).Error.Code != CodeNotFound {
		t.Errorf("unknown message = %d %s", r.status, r.body)
	}
	lists := b.dl.lists.Load()
	for _, id := range []string{"x", "msg_", "batch", message.DeliveryID(fan, epIDs(1)[0]), "ep_06h0td7azajsjqpb4b4ngtdr24", strings.ToUpper(fan)} {
		if r := b.do(t, "GET", PathMessages+"/"+id+"/deliveries", ""); r.status != 404 {
			t.Errorf("GET %s deliveries = %d, want 404", id, r.status)
		}
	}
	if b.dl.lists.Load() != lists {
		t.Errorf("ids that cannot be a message's reached the store")
	}
	// Paths beside the listing are not routes.
	for _, path := range []string{PathMessages + "/" + fan + "/deliveries/x", PathMessages + "/" + fan + "/attempts", PathMessages + "//deliveries"} {
		if r := b.do(t, "GET", path, ""); r.status != 404 || decode[ingest.ErrorBody](t, r).Error.Code != CodeNotFound {
			t.Errorf("GET %s = %d %s", path, r.status, r.body)
		}
	}
}

func TestMessageDeliveriesErrors(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	id := b.post(t, fanoutBody)
	other := b.post(t, `{"event_type": "order.shipped", "payload": 3}`)
	eps := epIDs(2)
	for _, m := range []string{id, other} {
		b.deliver(t, m, eps[0], message.Delivered)
		b.deliver(t, m, eps[1], message.Delivered)
	}
	base := PathMessages + "/" + id + "/deliveries"
	first := decode[deliveriesView](t, b.do(t, "GET", base+"?limit=1", ""))
	if first.NextCursor == nil {
		t.Fatal("no cursor for the first page")
	}
	cursor := url.QueryEscape(*first.NextCursor)
	eb := epSetup(t)
	eb.create(t, `{"url": "https://hooks.example.com/a"}`)
	eb.create(t, `{"url": "https://hooks.example.com/b"}`)
	epPage := decode[pageView](t, eb.do(t, "GET", "/v1/endpoints?limit=1", ""))
	if epPage.NextCursor == nil {
		t.Fatal("no cursor for the endpoints' first page")
	}
	tests := []struct {
		name, method, target string
		status               int
		code                 string
		fields               []string
		allow                string
	}{
		{name: "wrong method", method: "POST", target: base, status: 405, code: CodeMethodNotAllowed, allow: "GET"},
		{name: "delete", method: "DELETE", target: base, status: 405, code: CodeMethodNotAllowed, allow: "GET"},
		{name: "limit 0", method: "GET", target: base + "?limit=0", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "limit 101", method: "GET", target: base + "?limit=101", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "limit not a number", method: "GET", target: base + "?limit=ten", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "a filter of the endpoint listing", method: "GET", target: base + "?status=failed", status: 400, code: "validation_failed", fields: []string{"status"}},
		{name: "parameter twice", method: "GET", target: base + "?limit=1&limit=2", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "parameter without a name", method: "GET", target: base + "?=1", status: 400, code: "validation_failed", fields: []string{"query"}},
		{name: "every problem named", method: "GET", target: base + "?limit=0&since=x", status: 400, code: "validation_failed", fields: []string{"limit", "since"}},
		{name: "garbled cursor", method: "GET", target: base + "?cursor=abc", status: 400, code: "validation_failed", fields: []string{"cursor"}},
		{name: "another message's cursor", method: "GET", target: PathMessages + "/" + other + "/deliveries?limit=1&cursor=" + cursor, status: 400, code: "validation_failed", fields: []string{"cursor"}},
		{name: "the endpoints listing's cursor", method: "GET", target: base + "?cursor=" + url.QueryEscape(*epPage.NextCursor), status: 400, code: "validation_failed", fields: []string{"cursor"}},
	}
	for _, tt := range tests {
		r := b.do(t, tt.method, tt.target, "")
		e := decode[ingest.ErrorBody](t, r).Error
		if r.status != tt.status || e.Code != tt.code || r.headers["Allow"] != tt.allow {
			t.Errorf("%s: %d %q Allow %q, want %d %q Allow %q (%s)", tt.name, r.status, e.Code, r.headers["Allow"], tt.status, tt.code, tt.allow, r.body)
		}
		if got := problemFields(t, r); !slices.Equal(got, tt.fields) {
			t.Errorf("%s: details fields %q, want %q", tt.name, got, tt.fields)
		}
	}
	// A refused query reads nothing.
	before := b.dl.lists.Load()
	b.do(t, "GET", base+"?limit=0", "")
	if b.dl.lists.Load() != before {
		t.Errorf("a refused query was listed")
	}
}

func TestMessageDeliveriesDependencyFailures(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	id := b.post(t, fanoutBody)
	empty := b.post(t, `{"event_type": "invoice.paid", "payload": 4}`)
	b.deliver(t, id, epIDs(1)[0], message.Delivered)
	b.dl.failList = errors.New("dial tcp 10.1.2.3:443: connection refused to table pushfn-prod")
	r := b.do(t, "GET", PathMessages+"/"+id+"/deliveries", "")
	if r.status != 503 || r.headers["Retry-After"] == "" || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeUnavailable || strings.Contains(r.body, "pushfn-prod") {
		t.Errorf("listing with the store down = %d %v %s", r.status, r.headers, r.body)
	}
	// An empty page whose message cannot be read: 503, not 404.
	b.dl.failList = nil
	b.h.Records = failingRecords{err: errors.New("throttled")}
	if r := b.do(t, "GET", PathMessages+"/"+empty+"/deliveries", ""); r.status != 503 || r.headers["Retry-After"] == "" {
		t.Errorf("empty page with the record unreadable = %d %s", r.status, r.body)
	}
	// A page with deliveries needs no record read.
	if r := b.do(t, "GET", PathMessages+"/"+id+"/deliveries", ""); r.status != 200 {
		t.Errorf("page with deliveries, record unreadable = %d %s", r.status, r.body)
	}
}

// Without a deliveries store the route is unknown, as the endpoint deliveries are without theirs.
func TestMessageDeliveriesNeedAStore(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	id := b.post(t, fanoutBody)
	b.h.Deliveries = nil
	if r := b.do(t, "GET", PathMessages+"/"+id+"/deliveries", ""); r.status != 404 || !strings.Contains(r.body, "no such route") {
		t.Errorf("without a deliveries store = %d %s", r.status, r.body)
	}
}

// An endpoint's deliveries listing shows a fan-out's delivery with the message it belongs to.
func TestEndpointDeliveriesOfFanout(t *testing.T) {
	t.Parallel()
	b := fanSetup(t)
	eb := epSetup(t)
	eb.h.Records, eb.h.Deliveries, eb.h.Enqueuer = b.h.Records, b.h.Deliveries, b.h.Enqueuer
	ep := eb.create(t, `{"url": "https://hooks.example.com/a", "tenant_id": "acme"}`)
	id := b.post(t, fanoutBody)
	rec := b.deliver(t, id, ep.ID, message.Delivered)
	r := eb.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries", "")
	if want := reply(200, deliveryPage{Deliveries: []View{ViewOf(rec)}}, nil).Body; r.status != 200 || r.body != want {
		t.Errorf("endpoint listing = %d\n %s\nwant\n %s", r.status, r.body, want)
	}
	if !strings.Contains(r.body, `"id":"`+message.DeliveryID(id, ep.ID)+`"`) || !strings.Contains(r.body, `"message_id":"`+id+`"`) {
		t.Errorf("the delivery does not name its message: %s", r.body)
	}
}

func FuzzMessageDeliveryQuery(f *testing.F) {
	for _, s := range []string{"", "limit=1", "limit=100&cursor=abc", "limit=0", "limit=1&limit=1", "%zz", "status=failed", "=x", "cursor="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, invalid := messageDeliveryQuery(events.APIGatewayV2HTTPRequest{RawQueryString: raw}, "msg_x")
		if invalid != nil {
			if len(invalid.Problems) == 0 {
				t.Fatalf("%q: refused with no problem", raw)
			}
			for _, p := range invalid.Problems {
				if p.Field == "" || p.Reason == "" {
					t.Fatalf("%q: problem without a field or reason: %+v", raw, p)
				}
			}
			return
		}
		values, _ := url.ParseQuery(raw)
		for k := range values {
			if k != "limit" && k != "cursor" {
				t.Fatalf("%q: accepted the parameter %q", raw, k)
			}
		}
		if q.MessageID != "msg_x" || q.Limit < 1 || q.Limit > store.MaxListLimit || q.Cursor != values.Get("cursor") {
			t.Fatalf("%q: accepted %+v", raw, q)
		}
	})
}
