package storetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// DeliveryStore is a message record store that lists an endpoint's deliveries.
type DeliveryStore interface {
	store.Store
	store.Deliveries
}

// RunDeliveries runs the conformance suite of store.Deliveries against the stores newStore
// returns, each configured with TTL. Every subtest uses endpoint ids of its own, so newStore may
// hand out stores sharing one table.
func RunDeliveries(t *testing.T, newStore func(t *testing.T) DeliveryStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s DeliveryStore)
	}{
		{"NewestFirstInPages", testDeliveriesNewestFirstInPages},
		{"KeptThroughEveryWrite", testDeliveriesKeptThroughEveryWrite},
		{"StatusFilter", testDeliveriesStatusFilter},
		{"TimeFilters", testDeliveriesTimeFilters},
		{"SinceAfterUntil", testDeliveriesSinceAfterUntil},
		{"UnknownEndpoint", testDeliveriesUnknownEndpoint},
		{"CursorRefused", testDeliveriesCursorRefused},
		{"DefaultLimit", testDeliveriesDefaultLimit},
		{"CanceledContext", testDeliveriesCanceledContext},
		{"OfAMessage", testDeliveriesOfAMessage},
		{"CarryCopy", testDeliveriesCarryCopy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// createDeliveries creates n records to a fresh endpoint, the i-th at base + i seconds, plus one
// record to another endpoint and one to a raw target at the same times, which no listing of
// the endpoint may show. It returns the endpoint id and the records, oldest first.
func createDeliveries(t *testing.T, s store.Store, base time.Time, n int) (string, []message.Record) {
	t.Helper()
	ep := endpoint.NewID(base)
	var recs []message.Record
	for i := range n {
		at := base.Add(time.Duration(i) * time.Second)
		rec := newRecord(at)
		rec.EndpointID = ep
		recs = append(recs, mustCreate(t, s, rec))
	}
	other := newRecord(base)
	other.EndpointID = endpoint.NewID(base)
	mustCreate(t, s, other)
	mustCreate(t, s, newRecord(base))
	return ep, recs
}

// listAllDeliveries follows q's cursors to the end and returns the records and the page count.
func listAllDeliveries(t *testing.T, s store.Deliveries, q store.DeliveryQuery) ([]message.Record, int) {
	t.Helper()
	var all []message.Record
	for pages := 1; ; pages++ {
		pg, err := s.ListDeliveries(context.Background(), q)
		if err != nil {
			t.Fatalf("ListDeliveries(%+v) page %d: %v", q, pages, err)
		}
		all = append(all, pg.Records...)
		if pg.Next == "" {
			return all, pages
		}
		if pages > 100 {
			t.Fatalf("ListDeliveries: more than 100 pages")
		}
		q.Cursor = pg.Next
	}
}

func idsOf(recs []message.Record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

// newestFirst returns the ids of recs (oldest first) picked by the indexes, newest first.
func newestFirst(recs []message.Record, picks ...int) []string {
	var ids []string
	for i := len(recs) - 1; i >= 0; i-- {
		if len(picks) == 0 || slices.Contains(picks, i) {
			ids = append(ids, recs[i].ID)
		}
	}
	return ids
}

func testDeliveriesNewestFirstInPages(t *testing.T, s DeliveryStore) {
	ep, recs := createDeliveries(t, s, now(), 5)
	got, pages := listAllDeliveries(t, s, store.DeliveryQuery{EndpointID: ep, Limit: 2})
	if !slices.Equal(idsOf(got), newestFirst(recs)) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", idsOf(got), pages, newestFirst(recs))
	}
	for i, rec := range got {
		equal(t, "listed record", rec, recs[len(recs)-1-i])
	}
	// A page that ends exactly at the last delivery gives no cursor.
	pg, err := s.ListDeliveries(context.Background(), store.DeliveryQuery{EndpointID: ep, Limit: 5})
	if err != nil || len(pg.Records) != 5 || pg.Next != "" {
		t.Fatalf("ListDeliveries(limit 5) = %d records, next %q, %v; want 5, no cursor", len(pg.Records), pg.Next, err)
	}
}

// Every write after the create (mark replayed, claim, finish) keeps a record in its endpoint's
// listing, showing the record as written.
func testDeliveriesKeptThroughEveryWrite(t *testing.T, s DeliveryStore) {
	at := now()
	ep, recs := createDeliveries(t, s, at, 2)
	mustClaim(t, s, recs[0].ID, store.Claim{Now: at.Add(time.Minute), Lease: lease, Token: "tok-a"})
	done := mustFinish(t, s, recs[0].ID, store.Outcome{Now: at.Add(2 * time.Minute), Status: message.Delivered, Token: "tok-a",
		Attempt: &message.Attempt{At: at.Add(time.Minute), StatusCode: 204, DurationMS: 12}})
	if _, err := s.MarkReplayed(context.Background(), recs[1].ID, "", at.Add(time.Second)); err != nil {
		t.Fatalf("MarkReplayed: %v", err)
	}
	mustClaim(t, s, recs[1].ID, store.Claim{Now: at.Add(time.Minute), Lease: lease, Token: "tok-b"})
	leased := mustGet(t, s, recs[1].ID)
	got, _ := listAllDeliveries(t, s, store.DeliveryQuery{EndpointID: ep})
	if len(got) != 2 {
		t.Fatalf("listed %v after claim and finish, want both %v", idsOf(got), newestFirst(recs))
	}
	equal(t, "leased delivery", got[0], leased)
	equal(t, "delivered delivery", got[1], done)
}

func testDeliveriesStatusFilter(t *testing.T, s DeliveryStore) {
	at := now()
	ep, recs := createDeliveries(t, s, at, 5)
	for _, i := range []int{1, 3} {
		mustFinish(t, s, recs[i].ID, store.Outcome{Now: at.Add(time.Minute), Status: message.Failed,
			Attempt: &message.Attempt{At: at.Add(time.Minute), Error: "endpoint_disabled"}})
	}
	for _, tc := range []struct {
		status message.Status
		want   []string
	}{
		{message.Failed, newestFirst(recs, 1, 3)},
		{message.Accepted, newestFirst(recs, 0, 2, 4)},
		{message.Delivered, nil},
	} {
		got, _ := listAllDeliveries(t, s, store.DeliveryQuery{EndpointID: ep, Status: tc.status, Limit: 1})
		if !slices.Equal(idsOf(got), tc.want) {
			t.Errorf("status %s: listed %v, want %v", tc.status, idsOf(got), tc.want)
		}
	}
}

func testDeliveriesTimeFilters(t *testing.T, s DeliveryStore) {
	base := now()
	ep, recs := createDeliveries(t, s, base, 5)
	at := func(i int) time.Time { return recs[i].CreatedAt }
	for _, tc := range []struct {
		name         string
		since, until time.Time
		want         []string
	}{
		{"both inclusive", at(1), at(3), newestFirst(recs, 1, 2, 3)},
		{"since only", at(3), time.Time{}, newestFirst(recs, 3, 4)},
		{"until only", time.Time{}, at(1), newestFirst(recs, 0, 1)},
		{"since a microsecond after", at(1).Add(time.Microsecond), at(3), newestFirst(recs, 2, 3)},
		{"until a microsecond after", at(1), at(3).Add(time.Microsecond), newestFirst(recs, 1, 2, 3)},
		{"until a millisecond before", at(1), at(3).Add(-time.Millisecond), newestFirst(recs, 1, 2)},
		{"same instant", at(2), at(2), newestFirst(recs, 2)},
		{"other zone", at(1).In(time.FixedZone("east", 5*3600)), at(2).In(time.FixedZone("west", -7*3600)), newestFirst(recs, 1, 2)},
		{"before all", base.Add(-time.Hour), base.Add(-time.Minute), nil},
	} {
		got, _ := listAllDeliveries(t, s, store.DeliveryQuery{EndpointID: ep, Since: tc.since, Until: tc.until, Limit: 2})
		if !slices.Equal(idsOf(got), tc.want) {
			t.Errorf("%s: listed %v, want %v", tc.name, idsOf(got), tc.want)
		}
	}
}

func testDeliveriesSinceAfterUntil(t *testing.T, s DeliveryStore) {
	at := now()
	ep, _ := createDeliveries(t, s, at, 2)
	pg, err := s.ListDeliveries(context.Background(), store.DeliveryQuery{EndpointID: ep, Since: at.Add(time.Second), Until: at})
	if err != nil || len(pg.Records) != 0 || pg.Next != "" {
		t.Fatalf("ListDeliveries(since after until) = %v, next %q, %v; want none", idsOf(pg.Records), pg.Next, err)
	}
}

func testDeliveriesUnknownEndpoint(t *testing.T, s DeliveryStore) {
	createDeliveries(t, s, now(), 1)
	pg, err := s.ListDeliveries(context.Background(), store.DeliveryQuery{EndpointID: endpoint.NewID(now())})
	if err != nil || len(pg.Records) != 0 || pg.Next != "" {
		t.Fatalf("ListDeliveries(unknown endpoint) = %v, next %q, %v; want none", idsOf(pg.Records), pg.Next, err)
	}
}

func testDeliveriesCursorRefused(t *testing.T, s DeliveryStore) {
	at := now()
	ep, _ := createDeliveries(t, s, at, 3)
	q := store.DeliveryQuery{EndpointID: ep, Status: message.Accepted, Since: at, Limit: 1}
	pg, err := s.ListDeliveries(context.Background(), q)
	if err != nil || pg.Next == "" {
		t.Fatalf("first page: next %q, %v; want a cursor", pg.Next, err)
	}
	other := func(change func(*store.DeliveryQuery)) store.DeliveryQuery {
		o := q
		o.Cursor = pg.Next
		change(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		q    store.DeliveryQuery
	}{
		{"another endpoint", other(func(o *store.DeliveryQuery) { o.EndpointID = endpoint.NewID(at) })},
		{"another status", other(func(o *store.DeliveryQuery) { o.Status = message.Failed })},
		{"no status", other(func(o *store.DeliveryQuery) { o.Status = "" })},
		{"another since", other(func(o *store.DeliveryQuery) { o.Since = at.Add(-time.Second) })},
		{"an until", other(func(o *store.DeliveryQuery) { o.Until = at.Add(time.Hour) })},
		{"garbled", other(func(o *store.DeliveryQuery) { o.Cursor = "not a cursor!" })},
		{"not JSON", other(func(o *store.DeliveryQuery) { o.Cursor = "bm90IGpzb24" })},
		{"an endpoint listing's", other(func(o *store.DeliveryQuery) { o.Cursor = "eyJwIjoiZW5kcG9pbnRzIiwiYSI6ImVwXzAxIn0" })},
		{"before since", other(func(o *store.DeliveryQuery) { o.Cursor = movedCursor(t, pg.Next, "2000-01-01T00:00:00.000Z") })},
	} {
		_, err := s.ListDeliveries(context.Background(), tc.q)
		if !errors.Is(err, store.ErrCursor) {
			t.Errorf("%s: error = %v, want ErrCursor", tc.name, err)
		}
	}
	// The same filters given in another zone continue the listing.
	same := other(func(o *store.DeliveryQuery) { o.Since = at.In(time.FixedZone("east", 3600)) })
	if _, err := s.ListDeliveries(context.Background(), same); err != nil {
		t.Errorf("same filters in another zone: %v", err)
	}
}

func testDeliveriesDefaultLimit(t *testing.T, s DeliveryStore) {
	ep, recs := createDeliveries(t, s, now(), store.DefaultListLimit+1)
	for _, limit := range []int{0, -1} {
		pg, err := s.ListDeliveries(context.Background(), store.DeliveryQuery{EndpointID: ep, Limit: limit})
		if err != nil || len(pg.Records) != store.DefaultListLimit || pg.Next == "" {
			t.Fatalf("limit %d: %d records, next %q, %v; want %d and a cursor", limit, len(pg.Records), pg.Next, err, store.DefaultListLimit)
		}
	}
	pg, err := s.ListDeliveries(context.Background(), store.DeliveryQuery{EndpointID: ep, Limit: store.MaxListLimit + 1})
	if err != nil || len(pg.Records) != len(recs) || pg.Next != "" {
		t.Fatalf("limit %d: %d records, next %q, %v; want all %d", store.MaxListLimit+1, len(pg.Records), pg.Next, err, len(recs))
	}
}

func testDeliveriesCanceledContext(t *testing.T, s DeliveryStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ListDeliveries(ctx, store.DeliveryQuery{EndpointID: endpoint.NewID(now())}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListDeliveries(canceled) = %v, want context.Canceled", err)
	}
}

// movedCursor is cursor with the time of the sort key it continues after replaced by at: the
// same endpoint and filters, a start no listing of them gives.
func movedCursor(t *testing.T, cursor, at string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]string
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	_, id, ok := strings.Cut(c["a"], "#")
	if !ok {
		t.Fatalf("cursor %s continues after %q, not a time and an id", b, c["a"])
	}
	c["a"] = at + "#" + id
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(out)
}
