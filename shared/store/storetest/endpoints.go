package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/store"
)

// RunEndpoints runs the conformance suite of store.Endpoints against the stores newStore
// returns. Every subtest uses ids and tenants of its own, so newStore may hand out stores sharing
// one table; listings of every endpoint are checked only for the subtest's own endpoints.
func RunEndpoints(t *testing.T, newStore func(t *testing.T) store.Endpoints) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s store.Endpoints)
	}{
		{"CreateThenGet", testEndpointCreateThenGet},
		{"CreateExisting", testEndpointCreateExisting},
		{"GetMissing", testEndpointGetMissing},
		{"Update", testEndpointUpdate},
		{"UpdateStale", testEndpointUpdateStale},
		{"UpdateMissing", testEndpointUpdateMissing},
		{"UpdateConcurrent", testEndpointUpdateConcurrent},
		{"Delete", testEndpointDelete},
		{"DeleteStale", testEndpointDeleteStale},
		{"DeleteMissing", testEndpointDeleteMissing},
		{"ListByTenant", testEndpointListByTenant},
		{"ListNoTenant", testEndpointListNoTenant},
		{"ListAll", testEndpointListAll},
		{"ListMovesWithTenant", testEndpointListMovesWithTenant},
		{"ListCursorRefused", testEndpointListCursorRefused},
		{"ListLimits", testEndpointListLimits},
		{"CanceledContext", testEndpointCanceledContext},
		{"HealthMarks", testEndpointHealthMarks},
		{"HealthMissing", testEndpointHealthMissing},
		{"DisableFailing", testEndpointDisableFailing},
		{"DisableFailingConcurrent", testEndpointDisableFailingConcurrent},
		{"HealthThenStaleUpdate", testEndpointHealthThenStaleUpdate},
		{"UpdateThenHealth", testEndpointUpdateThenHealth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// uniqueTenant returns a tenant id no other subtest uses.
func uniqueTenant(t *testing.T) string {
	return fmt.Sprintf("%s-%s", t.Name(), endpoint.NewID(time.Now()))
}

// newEndpoint returns a record with every field set, a fresh id and the given tenant.
func newEndpoint(at time.Time, tenant string) endpoint.Record {
	disabledAt, failingSince := at.Add(-time.Minute), at.Add(-time.Hour)
	return endpoint.Record{
		Endpoint: endpoint.Endpoint{
			ID: endpoint.NewID(at), TenantID: tenant, URL: "https://hooks.example.com/push", Description: "orders",
			Headers: map[string]string{"X-Tenant": "acme"}, EventTypes: []string{"order.shipped", "order.*"},
			Disabled: true, DisabledReason: endpoint.ReasonManual, DisabledAt: &disabledAt,
			FailingSince: &failingSince,
			RateLimit:    &endpoint.RateLimit{PerSecond: 50}, Metadata: map[string]string{"team": "billing"},
			CreatedAt: at, UpdatedAt: at,
		},
		Secret:   "v1:sealed-current",
		Previous: []endpoint.PreviousSecret{{Sealed: "v1:sealed-previous", Until: at.Add(24 * time.Hour)}},
	}
}

// bare is a record with only what an endpoint needs: no tenant, headers, types, limit or metadata.
func bare(at time.Time, tenant string) endpoint.Record {
	return endpoint.Record{
		Endpoint: endpoint.Endpoint{ID: endpoint.NewID(at), TenantID: tenant, URL: "https://hooks.example.com/push", CreatedAt: at, UpdatedAt: at},
		Secret:   "v1:sealed",
	}
}

func mustCreateEndpoint(t *testing.T, s store.Endpoints, rec endpoint.Record) endpoint.Record {
	t.Helper()
	got, err := s.CreateEndpoint(context.Background(), rec)
	if err != nil {
		t.Fatalf("CreateEndpoint(%s): %v", rec.ID, err)
	}
	return got
}

func mustGetEndpoint(t *testing.T, s store.Endpoints, id string) endpoint.Record {
	t.Helper()
	rec, err := s.GetEndpoint(context.Background(), id)
	if err != nil {
		t.Fatalf("GetEndpoint(%s): %v", id, err)
	}
	return rec
}

// sameEndpoint fails when got and want differ in anything but the write token.
func sameEndpoint(t *testing.T, what string, got, want endpoint.Record) {
	t.Helper()
	got.WriteToken, want.WriteToken = "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testEndpointCreateThenGet(t *testing.T, s store.Endpoints) {
	for _, rec := range []endpoint.Record{newEndpoint(now(), uniqueTenant(t)), bare(now(), "")} {
		created := mustCreateEndpoint(t, s, rec)
		if created.Version != 1 || created.WriteToken == "" {
			t.Errorf("created at version %d with token %q, want 1 and a token", created.Version, created.WriteToken)
		}
		want := rec
		want.Version = 1
		sameEndpoint(t, "CreateEndpoint's answer", created, want)
		sameEndpoint(t, "GetEndpoint after create", mustGetEndpoint(t, s, rec.ID), want)
	}
}

func testEndpointCreateExisting(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, newEndpoint(now(), uniqueTenant(t)))
	other := bare(now(), "")
	other.ID = rec.ID
	if _, err := s.CreateEndpoint(context.Background(), other); !errors.Is(err, store.ErrEndpointExists) {
		t.Fatalf("second create: %v, want ErrEndpointExists", err)
	}
	sameEndpoint(t, "endpoint after a refused create", mustGetEndpoint(t, s, rec.ID), rec)
}

func testEndpointGetMissing(t *testing.T, s store.Endpoints) {
	if _, err := s.GetEndpoint(context.Background(), endpoint.NewID(now())); !errors.Is(err, store.ErrEndpointNotFound) {
		t.Fatalf("GetEndpoint of a missing id: %v, want ErrEndpointNotFound", err)
	}
}

func testEndpointUpdate(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, newEndpoint(now(), uniqueTenant(t)))
	changed := rec.Clone()
	changed.URL, changed.Headers, changed.EventTypes, changed.RateLimit = "https://other.example.com/", nil, nil, nil
	changed.Disabled, changed.DisabledReason, changed.DisabledAt = false, "", nil
	changed.UpdatedAt = rec.UpdatedAt.Add(time.Second)
	got, err := s.UpdateEndpoint(context.Background(), changed)
	if err != nil {
		t.Fatalf("UpdateEndpoint: %v", err)
	}
	want := changed
	want.Version = 2
	sameEndpoint(t, "UpdateEndpoint's answer", got, want)
	sameEndpoint(t, "GetEndpoint after update", mustGetEndpoint(t, s, rec.ID), want)
	if got.WriteToken == rec.WriteToken || got.WriteToken == "" {
		t.Errorf("the update kept the create's write token %q", rec.WriteToken)
	}
}

func testEndpointUpdateStale(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, newEndpoint(now(), uniqueTenant(t)))
	first := rec.Clone()
	first.Description = "first"
	if _, err := s.UpdateEndpoint(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	second := rec.Clone() // still at version 1
	second.Description = "second"
	if _, err := s.UpdateEndpoint(context.Background(), second); !errors.Is(err, store.ErrVersion) {
		t.Fatalf("update from a stale version: %v, want ErrVersion", err)
	}
	if got := mustGetEndpoint(t, s, rec.ID); got.Description != "first" || got.Version != 2 {
		t.Errorf("after a stale update: %q at version %d, want first at 2", got.Description, got.Version)
	}
}

func testEndpointUpdateMissing(t *testing.T, s store.Endpoints) {
	rec := bare(now(), "")
	rec.Version = 1
	if _, err := s.UpdateEndpoint(context.Background(), rec); !errors.Is(err, store.ErrEndpointNotFound) {
		t.Fatalf("UpdateEndpoint of a missing id: %v, want ErrEndpointNotFound", err)
	}
	if _, err := s.GetEndpoint(context.Background(), rec.ID); !errors.Is(err, store.ErrEndpointNotFound) {
		t.Fatalf("the update created the endpoint: %v", err)
	}
}

// Concurrent read-modify-write loops that retry on ErrVersion lose no write: each adds its own
// metadata key, and every key is there at the end.
func testEndpointUpdateConcurrent(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, bare(now(), uniqueTenant(t)))
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			ctx := context.Background()
			for {
				cur, err := s.GetEndpoint(ctx, rec.ID)
				if err != nil {
					errs[i] = err
					return
				}
				if cur.Metadata == nil {
					cur.Metadata = map[string]string{}
				}
				cur.Metadata[fmt.Sprintf("writer%d", i)] = "done"
				_, err = s.UpdateEndpoint(ctx, cur)
				if !errors.Is(err, store.ErrVersion) {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := mustGetEndpoint(t, s, rec.ID)
	if len(got.Metadata) != writers || got.Version != writers+1 {
		t.Errorf("after %d concurrent updates: %d keys at version %d, want %d at %d", writers, len(got.Metadata), got.Version, writers, writers+1)
	}
}

func testEndpointDelete(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, newEndpoint(now(), uniqueTenant(t)))
	if err := s.DeleteEndpoint(context.Background(), rec.ID, rec.Version); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if _, err := s.GetEndpoint(context.Background(), rec.ID); !errors.Is(err, store.ErrEndpointNotFound) {
		t.Fatalf("GetEndpoint after delete: %v, want ErrEndpointNotFound", err)
	}
	page, err := s.ListEndpoints(context.Background(), store.EndpointQuery{TenantID: &rec.TenantID})
	if err != nil || len(page.Endpoints) != 0 {
		t.Fatalf("listing after delete: %d endpoints, %v; want none", len(page.Endpoints), err)
	}
}

func testEndpointDeleteStale(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, bare(now(), ""))
	changed := rec.Clone()
	changed.Description = "changed"
	if _, err := s.UpdateEndpoint(context.Background(), changed); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEndpoint(context.Background(), rec.ID, rec.Version); !errors.Is(err, store.ErrVersion) {
		t.Fatalf("delete at a stale version: %v, want ErrVersion", err)
	}
	mustGetEndpoint(t, s, rec.ID)
}

func testEndpointDeleteMissing(t *testing.T, s store.Endpoints) {
	if err := s.DeleteEndpoint(context.Background(), endpoint.NewID(now()), 1); err != nil {
		t.Fatalf("DeleteEndpoint of a missing id: %v, want nil (it is gone)", err)
	}
}

// listAll follows a listing's cursors to its end, checking each page's size.
func listAll(t *testing.T, s store.Endpoints, q store.EndpointQuery) (ids []string, pages int) {
	t.Helper()
	for {
		page, err := s.ListEndpoints(context.Background(), q)
		if err != nil {
			t.Fatalf("ListEndpoints(page %d): %v", pages+1, err)
		}
		pages++
		if len(page.Endpoints) > q.Limit || page.Next != "" && len(page.Endpoints) != q.Limit {
			t.Fatalf("page %d has %d endpoints (next %q), limit %d", pages, len(page.Endpoints), page.Next, q.Limit)
		}
		for _, e := range page.Endpoints {
			ids = append(ids, e.ID)
		}
		if page.Next == "" {
			return ids, pages
		}
		q.Cursor = page.Next
	}
}

func createMany(t *testing.T, s store.Endpoints, n int, tenant string) []string {
	t.Helper()
	var ids []string
	at := now()
	for i := range n {
		rec := bare(at.Add(time.Duration(i)*time.Millisecond), tenant)
		mustCreateEndpoint(t, s, rec)
		ids = append(ids, rec.ID)
	}
	slices.Sort(ids)
	return ids
}

func testEndpointListByTenant(t *testing.T, s store.Endpoints) {
	tenant, other := uniqueTenant(t), uniqueTenant(t)+"-other"
	want := createMany(t, s, 5, tenant)
	createMany(t, s, 2, other)
	for _, tc := range []struct{ limit, pages int }{{2, 3}, {5, 1}, {1, 5}, {100, 1}} {
		got, pages := listAll(t, s, store.EndpointQuery{TenantID: &tenant, Limit: tc.limit})
		if !slices.Equal(got, want) || pages != tc.pages {
			t.Errorf("limit %d: %d pages of %v, want %d pages of %v (in id order, the other tenant's left out)", tc.limit, pages, got, tc.pages, want)
		}
	}
	page, err := s.ListEndpoints(context.Background(), store.EndpointQuery{TenantID: &tenant, Limit: 5})
	if err != nil || page.Next != "" || len(page.Endpoints) != 5 || page.Endpoints[0].URL == "" {
		t.Errorf("a page holding the last endpoint: %d endpoints, next %q, %v; want 5 whole records and no cursor", len(page.Endpoints), page.Next, err)
	}
	none := uniqueTenant(t) + "-none"
	if page, err := s.ListEndpoints(context.Background(), store.EndpointQuery{TenantID: &none}); err != nil || len(page.Endpoints) != 0 || page.Next != "" {
		t.Errorf("tenant without endpoints: %d, next %q, %v", len(page.Endpoints), page.Next, err)
	}
}

// subset keeps the ids of got that are in mine, in got's order.
func subset(got, mine []string) []string {
	var out []string
	for _, id := range got {
		if slices.Contains(mine, id) {
			out = append(out, id)
		}
	}
	return out
}

func testEndpointListNoTenant(t *testing.T, s store.Endpoints) {
	mine := createMany(t, s, 3, "")
	tenanted := createMany(t, s, 2, uniqueTenant(t))
	empty := ""
	got, _ := listAll(t, s, store.EndpointQuery{TenantID: &empty, Limit: 2})
	if !slices.Equal(subset(got, mine), mine) || len(subset(got, tenanted)) > 0 || !slices.IsSorted(got) {
		t.Errorf("endpoints of no tenant: %v; want %v among them, in order, and none of %v", got, mine, tenanted)
	}
}

func testEndpointListAll(t *testing.T, s store.Endpoints) {
	a := createMany(t, s, 3, uniqueTenant(t))
	b := createMany(t, s, 2, "")
	mine := slices.Sorted(slices.Values(append(append([]string{}, a...), b...)))
	got, _ := listAll(t, s, store.EndpointQuery{Limit: 3})
	if !slices.Equal(subset(got, mine), mine) || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("every endpoint: %v; want each of %v once, in id order", got, mine)
	}
}

func testEndpointListMovesWithTenant(t *testing.T, s store.Endpoints) {
	from, to := uniqueTenant(t), uniqueTenant(t)+"-to"
	rec := mustCreateEndpoint(t, s, bare(now(), from))
	moved := rec.Clone()
	moved.TenantID = to
	if _, err := s.UpdateEndpoint(context.Background(), moved); err != nil {
		t.Fatal(err)
	}
	if got, _ := listAll(t, s, store.EndpointQuery{TenantID: &from, Limit: 10}); len(got) != 0 {
		t.Errorf("old tenant still lists %v", got)
	}
	if got, _ := listAll(t, s, store.EndpointQuery{TenantID: &to, Limit: 10}); !slices.Equal(got, []string{rec.ID}) {
		t.Errorf("new tenant lists %v, want [%s]", got, rec.ID)
	}
}

func testEndpointListCursorRefused(t *testing.T, s store.Endpoints) {
	tenant, other := uniqueTenant(t), uniqueTenant(t)+"-other"
	createMany(t, s, 3, tenant)
	page, err := s.ListEndpoints(context.Background(), store.EndpointQuery{TenantID: &tenant, Limit: 1})
	if err != nil || page.Next == "" {
		t.Fatalf("first page: next %q, %v", page.Next, err)
	}
	for name, q := range map[string]store.EndpointQuery{
		"another tenant":       {TenantID: &other, Cursor: page.Next},
		"every endpoint":       {Cursor: page.Next},
		"not base64url":        {TenantID: &tenant, Cursor: "%%%"},
		"base64url of garbage": {TenantID: &tenant, Cursor: "eyJ4IjoxfQ"},
		"truncated":            {TenantID: &tenant, Cursor: page.Next[:len(page.Next)-3]},
	} {
		if _, err := s.ListEndpoints(context.Background(), q); !errors.Is(err, store.ErrCursor) {
			t.Errorf("%s: %v, want ErrCursor", name, err)
		}
	}
}

func testEndpointListLimits(t *testing.T, s store.Endpoints) {
	tenant := uniqueTenant(t)
	createMany(t, s, store.DefaultListLimit+1, tenant)
	page, err := s.ListEndpoints(context.Background(), store.EndpointQuery{TenantID: &tenant})
	if err != nil || len(page.Endpoints) != store.DefaultListLimit || page.Next == "" {
		t.Errorf("no limit: %d endpoints, next %q, %v; want %d and a cursor", len(page.Endpoints), page.Next, err, store.DefaultListLimit)
	}
	page, err = s.ListEndpoints(context.Background(), store.EndpointQuery{TenantID: &tenant, Limit: 1000})
	if err != nil || len(page.Endpoints) != store.DefaultListLimit+1 || page.Next != "" {
		t.Errorf("limit over the maximum: %d endpoints, next %q, %v; want all %d", len(page.Endpoints), page.Next, err, store.DefaultListLimit+1)
	}
}

func testEndpointCanceledContext(t *testing.T, s store.Endpoints) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := bare(now(), "")
	_, errCreate := s.CreateEndpoint(ctx, rec)
	_, errGet := s.GetEndpoint(ctx, rec.ID)
	_, errList := s.ListEndpoints(ctx, store.EndpointQuery{})
	for name, err := range map[string]error{"create": errCreate, "get": errGet, "list": errList} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
	if _, err := s.GetEndpoint(context.Background(), rec.ID); !errors.Is(err, store.ErrEndpointNotFound) {
		t.Errorf("a canceled create wrote the endpoint: %v", err)
	}
}
