package httpapi

import (
	"context"
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
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// countingDeliveries counts the listings that reach the store, and can fail them.
type countingDeliveries struct {
	store.Deliveries
	calls atomic.Int64
	fail  error
}

func (c *countingDeliveries) ListDeliveries(ctx context.Context, q store.DeliveryQuery) (store.DeliveryPage, error) {
	c.calls.Add(1)
	if c.fail != nil {
		return store.DeliveryPage{}, c.fail
	}
	return c.Deliveries.ListDeliveries(ctx, q)
}

type deliveriesView struct {
	Deliveries []View  `json:"deliveries"`
	NextCursor *string `json:"next_cursor"`
}

// delivSetup is an endpoint bundle whose handler lists the deliveries of records, and an
// endpoint with four deliveries created a second apart (the second one failed as disabled), plus
// one to another endpoint and one to a raw target. The records are oldest first.
func delivSetup(t *testing.T) (b *epBundle, dl *countingDeliveries, records *store.Memory, ep createdView, recs []message.Record) {
	t.Helper()
	b = epSetup(t)
	records = &store.Memory{}
	dl = &countingDeliveries{Deliveries: records}
	b.h.Deliveries = dl
	ep = b.create(t, `{"url": "https://hooks.example.com/a"}`)
	other := b.create(t, `{"url": "https://hooks.example.com/b"}`)
	put := func(at time.Time, endpointID string) message.Record {
		rec := message.Record{ID: message.NewID(at), Status: message.Accepted, Fingerprint: "f", TargetHost: "hooks.example.com",
			EndpointID: endpointID, CreatedAt: at, UpdatedAt: at}
		if err := records.Create(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		got, err := records.Get(context.Background(), rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for i := range 4 {
		recs = append(recs, put(t0.Add(time.Duration(i)*time.Second), ep.ID))
	}
	failed, err := records.Finish(context.Background(), recs[1].ID, store.Outcome{Now: t0.Add(time.Minute), Status: message.Failed,
		Attempt: &message.Attempt{At: t0.Add(time.Minute), Error: message.ReasonEndpointDisabled}})
	if err != nil {
		t.Fatal(err)
	}
	recs[1] = failed
	put(t0, other.ID)
	put(t0, "")
	return b, dl, records, ep, recs
}

func ids(vs []View) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func TestEndpointDeliveries(t *testing.T) {
	t.Parallel()
	b, _, _, ep, recs := delivSetup(t)
	base := "/v1/endpoints/" + ep.ID + "/deliveries"
	r := b.do(t, "GET", base, "")
	if r.status != 200 {
		t.Fatalf("list = %d %s", r.status, r.body)
	}
	all := decode[deliveriesView](t, r)
	var want []View
	for i := len(recs) - 1; i >= 0; i-- {
		want = append(want, ViewOf(recs[i]))
	}
	// Compared through JSON, as a client sees them.
	if wantBody := reply(200, deliveryPage{Deliveries: want}, nil).Body; r.body != wantBody {
		t.Errorf("listing\n %s\nwant\n %s", r.body, wantBody)
	}
	if all.NextCursor != nil || !strings.Contains(r.body, `"next_cursor":null`) {
		t.Errorf("one page with a cursor: %s", r.body)
	}
	view := func(i int) string { return recs[i].ID }
	at := func(i int) string { return url.QueryEscape(recs[i].CreatedAt.Format(time.RFC3339Nano)) }
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"status=failed", []string{view(1)}},
		{"status=accepted", []string{view(3), view(2), view(0)}},
		{"status=delivered", nil},
		{"since=" + at(1) + "&until=" + at(2), []string{view(2), view(1)}},
		{"since=" + at(2), []string{view(3), view(2)}},
		{"until=" + at(0), []string{view(0)}},
		{"since=" + url.QueryEscape("2026-11-24T11:00:00.0005+01:00"), []string{view(3), view(2), view(1)}},
		{"status=accepted&since=" + at(1), []string{view(3), view(2)}},
	} {
		got := decode[deliveriesView](t, b.do(t, "GET", base+"?"+tc.query, ""))
		if !slices.Equal(ids(got.Deliveries), tc.want) || got.NextCursor != nil {
			t.Errorf("%s: %v (next %v), want %v", tc.query, ids(got.Deliveries), got.NextCursor, tc.want)
		}
	}
	// Pages of one follow each other to the end, with the filters given again.
	var got []string
	target, pages := base+"?status=accepted&limit=1", 0
	for {
		p := decode[deliveriesView](t, b.do(t, "GET", target, ""))
		pages++
		got = append(got, ids(p.Deliveries)...)
		if p.NextCursor == nil {
			break
		}
		target = base + "?status=accepted&limit=1&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if want := []string{view(3), view(2), view(0)}; !slices.Equal(got, want) || pages != 3 {
		t.Errorf("%d pages of %v, want 3 of %v", pages, got, want)
	}
	// With no query string, API Gateway may give only the parameters map.
	req := events.APIGatewayV2HTTPRequest{RawPath: base, QueryStringParameters: map[string]string{"status": "failed"}}
	req.RequestContext.HTTP.Method = "GET"
	resp, _ := b.h.Handle(t.Context(), req)
	if p := decode[deliveriesView](t, response{body: resp.Body}); !slices.Equal(ids(p.Deliveries), []string{view(1)}) {
		t.Errorf("parameters map: %s", resp.Body)
	}
}

// An endpoint with no deliveries lists none; an unknown one is 404; a deleted one's deliveries
// stay listed, and a first page of none of them is 404 as the endpoint is gone, while a listing
// begun goes on to its end.
func TestEndpointDeliveriesOfMissingEndpoints(t *testing.T) {
	t.Parallel()
	b, _, records, ep, recs := delivSetup(t)
	empty := b.create(t, `{"url": "https://hooks.example.com/empty"}`)
	if r := b.do(t, "GET", "/v1/endpoints/"+empty.ID+"/deliveries", ""); r.status != 200 || r.body != `{"deliveries":[],"next_cursor":null}` {
		t.Errorf("endpoint without deliveries = %d %s", r.status, r.body)
	}
	if r := b.do(t, "GET", "/v1/endpoints/"+endpoint.NewID(t0)+"/deliveries", ""); r.status != 404 || decode[ingest.ErrorBody](t, r).Error.Code != CodeNotFound {
		t.Errorf("unknown endpoint = %d %s", r.status, r.body)
	}
	if r := b.do(t, "DELETE", "/v1/endpoints/"+ep.ID, ""); r.status != 204 {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	if p := decode[deliveriesView](t, b.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries?status=failed", "")); !slices.Equal(ids(p.Deliveries), []string{recs[1].ID}) {
		t.Errorf("deleted endpoint's failed deliveries: %v", ids(p.Deliveries))
	}
	if r := b.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries?status=expired", ""); r.status != 404 {
		t.Errorf("deleted endpoint, none listed = %d %s", r.status, r.body)
	}
	// The last accepted delivery goes (the undo of a create that could not queue it) between
	// two pages: the page after is empty, and not a 404.
	p := decode[deliveriesView](t, b.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries?status=accepted&limit=2", ""))
	if p.NextCursor == nil || !slices.Equal(ids(p.Deliveries), []string{recs[3].ID, recs[2].ID}) {
		t.Fatalf("first page of accepted: %v (next %v)", ids(p.Deliveries), p.NextCursor)
	}
	if err := records.Delete(context.Background(), recs[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	r := b.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries?status=accepted&limit=2&cursor="+url.QueryEscape(*p.NextCursor), "")
	if r.status != 200 || r.body != `{"deliveries":[],"next_cursor":null}` {
		t.Errorf("deleted endpoint, a listing's last page empty = %d %s", r.status, r.body)
	}
}

func TestEndpointDeliveriesErrors(t *testing.T) {
	t.Parallel()
	b, dl, _, ep, _ := delivSetup(t)
	other := b.create(t, `{"url": "https://hooks.example.com/c"}`)
	base := "/v1/endpoints/" + ep.ID + "/deliveries"
	first := decode[deliveriesView](t, b.do(t, "GET", base+"?limit=1", ""))
	if first.NextCursor == nil {
		t.Fatal("no cursor for the first page")
	}
	cursor := url.QueryEscape(*first.NextCursor)
	tests := []struct {
		name, method, target string
		status               int
		code                 string
		fields               []string
		allow                string
	}{
		{name: "wrong method", method: "POST", target: base, status: 405, code: CodeMethodNotAllowed, allow: "GET"},
		{name: "status unknown", method: "GET", target: base + "?status=done", status: 400, code: "validation_failed", fields: []string{"status"}},
		{name: "status empty", method: "GET", target: base + "?status=", status: 400, code: "validation_failed", fields: []string{"status"}},
		{name: "since not a time", method: "GET", target: base + "?since=yesterday", status: 400, code: "validation_failed", fields: []string{"since"}},
		{name: "since without zone", method: "GET", target: base + "?since=2026-11-24T10:00:00", status: 400, code: "validation_failed", fields: []string{"since"}},
		{name: "until a date", method: "GET", target: base + "?until=2026-11-24", status: 400, code: "validation_failed", fields: []string{"until"}},
		{name: "since after until", method: "GET", target: base + "?since=2026-11-24T10:00:01Z&until=2026-11-24T10:00:00Z", status: 400, code: "validation_failed", fields: []string{"until"}},
		{name: "limit 0", method: "GET", target: base + "?limit=0", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "limit 101", method: "GET", target: base + "?limit=101", status: 400, code: "validation_failed", fields: []string{"limit"}},
		{name: "unknown parameter", method: "GET", target: base + "?tenant_id=acme", status: 400, code: "validation_failed", fields: []string{"tenant_id"}},
		{name: "parameter twice", method: "GET", target: base + "?status=failed&status=accepted", status: 400, code: "validation_failed", fields: []string{"status"}},
		{name: "parameter without a name", method: "GET", target: base + "?=failed", status: 400, code: "validation_failed", fields: []string{"query"}},
		{name: "every problem named", method: "GET", target: base + "?status=x&since=y&limit=z", status: 400, code: "validation_failed", fields: []string{"limit", "since", "status"}},
		{name: "garbled cursor", method: "GET", target: base + "?cursor=abc", status: 400, code: "validation_failed", fields: []string{"cursor"}},
		{name: "another endpoint's cursor", method: "GET", target: "/v1/endpoints/" + other.ID + "/deliveries?limit=1&cursor=" + cursor, status: 400, code: "validation_failed", fields: []string{"cursor"}},
		{name: "cursor with other filters", method: "GET", target: base + "?limit=1&status=accepted&cursor=" + cursor, status: 400, code: "validation_failed", fields: []string{"cursor"}},
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
	// Ids that cannot exist are refused without a lookup.
	before, eps := dl.calls.Load(), b.eps.calls.Load()
	for _, id := range []string{"x", "ep_", "msg_06h0td7azajsjqpb4b4ngtdr24", "EP_06H0TD7AZAJSJQPB4B4NGTDR24"} {
		if r := b.do(t, "GET", "/v1/endpoints/"+id+"/deliveries", ""); r.status != 404 {
			t.Errorf("GET %s deliveries = %d, want 404", id, r.status)
		}
	}
	if dl.calls.Load() != before || b.eps.calls.Load() != eps {
		t.Errorf("bad ids reached the stores")
	}
	// A refused query reads nothing either.
	before = dl.calls.Load()
	b.do(t, "GET", base+"?limit=0", "")
	if dl.calls.Load() != before {
		t.Errorf("a refused query was listed")
	}
}

func TestEndpointDeliveriesDependencyFailures(t *testing.T) {
	t.Parallel()
	b, dl, _, ep, _ := delivSetup(t)
	empty := b.create(t, `{"url": "https://hooks.example.com/empty"}`)
	dl.fail = errors.New("dial tcp 10.1.2.3:443: connection refused to table pushfn-prod")
	r := b.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries", "")
	if r.status != 503 || r.headers["Retry-After"] == "" || decode[ingest.ErrorBody](t, r).Error.Code != ingest.CodeUnavailable || strings.Contains(r.body, "pushfn-prod") {
		t.Errorf("listing with the store down = %d %v %s", r.status, r.headers, r.body)
	}
	// An empty page whose endpoint cannot be read: 503, not 404.
	dl.fail = nil
	b.eps.fail = errors.New("endpoint store down")
	if r := b.do(t, "GET", "/v1/endpoints/"+empty.ID+"/deliveries", ""); r.status != 503 {
		t.Errorf("empty page with the endpoint store down = %d %s", r.status, r.body)
	}
	// A page with deliveries needs no endpoint read.
	if r := b.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries", ""); r.status != 200 {
		t.Errorf("page with deliveries, endpoint store down = %d %s", r.status, r.body)
	}
}

// Without a deliveries store the route is unknown, as the other endpoint routes are without theirs.
func TestEndpointDeliveriesNeedAStore(t *testing.T) {
	t.Parallel()
	b := epSetup(t)
	ep := b.create(t, `{"url": "https://hooks.example.com/a"}`)
	if r := b.do(t, "GET", "/v1/endpoints/"+ep.ID+"/deliveries", ""); r.status != 404 {
		t.Errorf("without a deliveries store = %d %s", r.status, r.body)
	}
}

func FuzzDeliveryQuery(f *testing.F) {
	for _, s := range []string{"", "status=failed", "since=2026-11-24T10:00:00Z&until=2026-11-24T11:00:00.5+01:00", "limit=100&cursor=abc",
		"since=2026-11-24T10:00:01Z&until=2026-11-24T10:00:00Z", "status=failed&status=failed", "%zz", "limit=-1", "x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, invalid := deliveryQuery(events.APIGatewayV2HTTPRequest{RawQueryString: raw}, "ep_x")
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
		if q.EndpointID != "ep_x" || q.Limit < 1 || q.Limit > store.MaxListLimit ||
			(q.Status != "" && !slices.Contains(deliveryStatuses, q.Status)) ||
			(!q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until)) {
			t.Fatalf("%q: accepted %+v", raw, q)
		}
		values, _ := url.ParseQuery(raw)
		if want := values.Get("cursor"); q.Cursor != want {
			t.Fatalf("%q: cursor %q, want %q", raw, q.Cursor, want)
		}
	})
}
