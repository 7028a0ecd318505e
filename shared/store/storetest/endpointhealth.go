package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/store"
)

// healthWrite is one call of a health write and what it answered.
type healthWrite struct {
	rec     endpoint.Record
	applied bool
	err     error
}

func markFailing(s store.Endpoints, id string, since time.Time) healthWrite {
	rec, applied, err := s.MarkEndpointFailing(context.Background(), id, since)
	return healthWrite{rec, applied, err}
}

func markHealthy(s store.Endpoints, id string) healthWrite {
	rec, applied, err := s.MarkEndpointHealthy(context.Background(), id)
	return healthWrite{rec, applied, err}
}

func disableFailing(s store.Endpoints, id string, since, at time.Time) healthWrite {
	rec, applied, err := s.DisableFailingEndpoint(context.Background(), id, since, at)
	return healthWrite{rec, applied, err}
}

// failingSince is a record's failing_since, the zero time when it has none.
func failingSince(rec endpoint.Record) time.Time {
	if rec.FailingSince == nil {
		return time.Time{}
	}
	return *rec.FailingSince
}

// testEndpointHealthMarks: failing_since is set only when not set and cleared only when set;
// each write that applies raises the version by one and answers the endpoint as written, each
// that does not answers it as stored and changes nothing.
func testEndpointHealthMarks(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, bare(now(), uniqueTenant(t)))
	t1, t2 := now(), now().Add(time.Minute)
	for i, step := range []struct {
		name        string
		write       func() healthWrite
		applied     bool
		wantSince   time.Time
		wantVersion int
	}{
		{"first failure", func() healthWrite { return markFailing(s, rec.ID, t1) }, true, t1, 2},
		{"later failure", func() healthWrite { return markFailing(s, rec.ID, t2) }, false, t1, 2},
		{"success", func() healthWrite { return markHealthy(s, rec.ID) }, true, time.Time{}, 3},
		{"second success", func() healthWrite { return markHealthy(s, rec.ID) }, false, time.Time{}, 3},
		{"failure after success", func() healthWrite { return markFailing(s, rec.ID, t2) }, true, t2, 4},
	} {
		w := step.write()
		if w.err != nil {
			t.Fatalf("step %d (%s): %v", i, step.name, w.err)
		}
		if w.applied != step.applied || !failingSince(w.rec).Equal(step.wantSince) || w.rec.Version != step.wantVersion {
			t.Errorf("step %d (%s): applied %t, failing since %v at version %d; want %t, %v at %d", i, step.name,
				w.applied, failingSince(w.rec), w.rec.Version, step.applied, step.wantSince, step.wantVersion)
		}
		stored := mustGetEndpoint(t, s, rec.ID)
		sameEndpoint(t, "stored after "+step.name, stored, w.rec)
	}
}

// testEndpointHealthMissing: the health writes of an endpoint that does not exist fail with
// ErrEndpointNotFound and create nothing.
func testEndpointHealthMissing(t *testing.T, s store.Endpoints) {
	id := endpoint.NewID(now())
	for name, w := range map[string]healthWrite{
		"MarkEndpointFailing":    markFailing(s, id, now()),
		"MarkEndpointHealthy":    markHealthy(s, id),
		"DisableFailingEndpoint": disableFailing(s, id, now(), now()),
	} {
		if !errors.Is(w.err, store.ErrEndpointNotFound) || w.applied {
			t.Errorf("%s of a missing endpoint: applied %t, %v; want ErrEndpointNotFound", name, w.applied, w.err)
		}
	}
	if _, err := s.GetEndpoint(context.Background(), id); !errors.Is(err, store.ErrEndpointNotFound) {
		t.Errorf("GetEndpoint after health writes to a missing endpoint: %v, want ErrEndpointNotFound", err)
	}
}

// testEndpointDisableFailing: an endpoint is disabled for failing only while it is enabled and
// failing since the time the write names; disabled, it shows reason, time and failing_since.
func testEndpointDisableFailing(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, bare(now(), uniqueTenant(t)))
	since, at := now(), now().Add(time.Hour)
	if w := disableFailing(s, rec.ID, since, at); w.err != nil || w.applied || w.rec.Disabled {
		t.Fatalf("disable of a healthy endpoint: applied %t, disabled %t, %v; want neither", w.applied, w.rec.Disabled, w.err)
	}
	if w := markFailing(s, rec.ID, since); w.err != nil || !w.applied {
		t.Fatalf("mark failing: applied %t, %v", w.applied, w.err)
	}
	if w := disableFailing(s, rec.ID, since.Add(-time.Second), at); w.err != nil || w.applied || w.rec.Disabled {
		t.Fatalf("disable naming another failing_since: applied %t, disabled %t, %v; want neither", w.applied, w.rec.Disabled, w.err)
	}
	w := disableFailing(s, rec.ID, since, at)
	if w.err != nil || !w.applied {
		t.Fatalf("disable: applied %t, %v", w.applied, w.err)
	}
	got := mustGetEndpoint(t, s, rec.ID)
	if !got.Disabled || got.DisabledReason != endpoint.ReasonFailing || got.DisabledAt == nil || !got.DisabledAt.Equal(at) ||
		!failingSince(got).Equal(since) || !got.UpdatedAt.Equal(at) || got.Version != 3 {
		t.Errorf("disabled endpoint: %+v (version %d); want disabled %q at %v, failing since %v, version 3", got.Endpoint, got.Version, endpoint.ReasonFailing, at, since)
	}
	sameEndpoint(t, "answer of the disable", w.rec, got)
	if w := disableFailing(s, rec.ID, since, at.Add(time.Minute)); w.err != nil || w.applied || !w.rec.DisabledAt.Equal(at) {
		t.Errorf("second disable: applied %t, %v; want not applied, the first disabled_at kept", w.applied, w.err)
	}
}

// testEndpointDisableFailingConcurrent: of 8 concurrent disables of one failing endpoint, one
// applies.
func testEndpointDisableFailingConcurrent(t *testing.T, s store.Endpoints) {
	rec := mustCreateEndpoint(t, s, bare(now(), uniqueTenant(t)))
	since := now()
	if w := markFailing(s, rec.ID, since); w.err != nil || !w.applied {
		t.Fatalf("mark failing: applied %t, %v", w.applied, w.err)
	}
	const writers = 8
	results := make([]healthWrite, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { results[i] = disableFailing(s, rec.ID, since, since.Add(time.Duration(i+1)*time.Minute)) })
	}
	wg.Wait()
	applied := 0
	for i, w := range results {
		if w.err != nil {
			t.Fatalf("disable %d: %v", i, w.err)
		}
		if w.applied {
			applied++
		}
		if !w.rec.Disabled {
			t.Errorf("disable %d answered an endpoint not disabled", i)
		}
	}
	if got := mustGetEndpoint(t, s, rec.ID); applied != 1 || got.Version != 3 {
		t.Errorf("%d concurrent disables: %d applied, version %d; want 1 applied, version 3", writers, applied, got.Version)
	}
}

// testEndpointHealthThenStaleUpdate: an update based on the version before a health write fails
// with ErrVersion, so the API reads again and the update keeps failing_since.
func testEndpointHealthThenStaleUpdate(t *testing.T, s store.Endpoints) {
	ctx := context.Background()
	read := mustCreateEndpoint(t, s, bare(now(), uniqueTenant(t)))
	since := now()
	if w := markFailing(s, read.ID, since); w.err != nil || !w.applied {
		t.Fatalf("mark failing: applied %t, %v", w.applied, w.err)
	}
	stale := read.Clone()
	stale.Description = "changed"
	if _, err := s.UpdateEndpoint(ctx, stale); !errors.Is(err, store.ErrVersion) {
		t.Fatalf("update based on the version before a health write: %v, want ErrVersion", err)
	}
	cur := mustGetEndpoint(t, s, read.ID)
	cur.Description = "changed"
	if _, err := s.UpdateEndpoint(ctx, cur); err != nil {
		t.Fatalf("update reapplied: %v", err)
	}
	if got := mustGetEndpoint(t, s, read.ID); got.Description != "changed" || !failingSince(got).Equal(since) {
		t.Errorf("after a health write and an update: description %q, failing since %v; want %q, %v", got.Description, failingSince(got), "changed", since)
	}
}

// testEndpointUpdateThenHealth: a health write after an update keeps the update's change.
func testEndpointUpdateThenHealth(t *testing.T, s store.Endpoints) {
	ctx := context.Background()
	rec := mustCreateEndpoint(t, s, bare(now(), uniqueTenant(t)))
	rec.Description, rec.Metadata = "changed", map[string]string{"k": "v"}
	if _, err := s.UpdateEndpoint(ctx, rec); err != nil {
		t.Fatal(err)
	}
	since := now()
	w := markFailing(s, rec.ID, since)
	if w.err != nil || !w.applied {
		t.Fatalf("mark failing: applied %t, %v", w.applied, w.err)
	}
	got := mustGetEndpoint(t, s, rec.ID)
	if got.Description != "changed" || got.Metadata["k"] != "v" || !failingSince(got).Equal(since) || got.Version != 3 {
		t.Errorf("after an update and a health write: %+v at version %d; want the update's change, failing since %v, version 3", got.Endpoint, got.Version, since)
	}
}
