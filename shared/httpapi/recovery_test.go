package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

func TestStartRecovery(t *testing.T) {
	t.Parallel()
	b, records, prod := epMsgSetup(t)
	ep := b.create(t, `{"url": "https://hooks.example.com/orders"}`)
	r := b.do(t, "POST", PathEndpoints+"/"+ep.ID+"/recover", `{"since": "2026-11-30T00:00:00Z", "until": "2026-12-01T00:00:00+01:00"}`)
	var v RecoveryView
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("POST recover: %d %s", r.status, r.body)
	}
	since, until := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	if !message.ValidRecoveryID(v.ID) || v.Status != "running" || v.EndpointID != ep.ID || !v.Since.Equal(since) || !v.Until.Equal(until) ||
		v.Matched != 0 || v.Requeued != 0 || v.FinishedAt != nil || r.headers["Location"] != PathRecoveries+"/"+v.ID {
		t.Fatalf("answer %+v, Location %q", v, r.headers["Location"])
	}
	envs := prod.Envelopes()
	if len(envs) != 1 || envs[0].ID != v.ID || envs[0].EndpointID != ep.ID || !envs[0].Since.Equal(since) || !envs[0].Until.Equal(until) || envs[0].Fingerprint == "" {
		t.Fatalf("queued %+v, want the recovery's copy with its window", envs)
	}
	rec, err := records.Get(t.Context(), v.ID)
	if err != nil || rec.Status != message.Accepted || rec.Fingerprint != envs[0].Fingerprint || !rec.RecoverSince.Equal(since) {
		t.Fatalf("record %+v, %v", rec, err)
	}
	got := b.do(t, "GET", PathRecoveries+"/"+v.ID, "")
	if got.status != http.StatusOK || !strings.Contains(got.body, `"status":"running"`) {
		t.Fatalf("GET: %d %s", got.status, got.body)
	}

	// Without until, the window ends now.
	r = b.do(t, "POST", PathEndpoints+"/"+ep.ID+"/recover", `{"since": "2026-11-20T00:00:00Z"}`)
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || r.status != http.StatusAccepted || !v.Until.Equal(b.clock.Now().UTC().Truncate(time.Millisecond)) {
		t.Fatalf("without until: %d %s", r.status, r.body)
	}
}

func TestStartRecoveryRefused(t *testing.T) {
	t.Parallel()
	b, records, prod := epMsgSetup(t)
	ep := b.create(t, `{"url": "https://hooks.example.com/orders"}`)
	path := PathEndpoints + "/" + ep.ID + "/recover"
	for _, tc := range []struct {
		name, path, body string
		status           int
		fields           []string
	}{
		{"no since", path, `{}`, 400, []string{"since"}},
		{"since not a time", path, `{"since": "yesterday"}`, 400, []string{"since"}},
		{"since a number", path, `{"since": 1}`, 400, []string{"since"}},
		{"until before since", path, `{"since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}`, 400, []string{"until"}},
		{"unknown field", path, `{"since": "2026-12-01T00:00:00Z", "status": "failed"}`, 400, []string{"status"}},
		{"not an object", path, `[1]`, 400, []string{"body"}},
		{"not JSON", path, `{"since": `, 400, nil},
		{"unknown endpoint", PathEndpoints + "/" + message.NewPrefixedID(message.EndpointIDPrefix, t0) + "/recover", `{"since": "2026-11-20T00:00:00Z"}`, 404, nil},
		{"bad endpoint id", PathEndpoints + "/ep_x/recover", `{"since": "2026-11-20T00:00:00Z"}`, 404, nil},
	} {
		r := b.do(t, "POST", tc.path, tc.body)
		if r.status != tc.status || (tc.fields != nil && !slices.Equal(problemFields(t, r), tc.fields)) {
			t.Errorf("%s: %d %s, want %d at %v", tc.name, r.status, r.body, tc.status, tc.fields)
		}
	}
	if r := b.do(t, "GET", path, ""); r.status != http.StatusMethodNotAllowed || r.headers["Allow"] != "POST" {
		t.Errorf("GET recover: %d %v", r.status, r.headers)
	}
	if writes, _ := records.Counts(); writes != 0 || prod.Calls() != 0 {
		t.Errorf("refused requests wrote %d records and queued %d times", writes, prod.Calls())
	}

	// The queue failing: 503, and the record written is removed again.
	prod.Fail = func(message.Envelope) bool { return true }
	r := b.do(t, "POST", path, `{"since": "2026-11-20T00:00:00Z"}`)
	if r.status != http.StatusServiceUnavailable || r.headers["Retry-After"] == "" {
		t.Fatalf("queue down: %d %s", r.status, r.body)
	}
	envs := prod.Envelopes()
	if len(envs) != 0 {
		t.Fatalf("queued %+v with the queue down", envs)
	}
	if writes, _ := records.Counts(); writes != 2 { // the create and its removal
		t.Errorf("%d writes, want the create and its removal", writes)
	}
}

func TestGetRecovery(t *testing.T) {
	t.Parallel()
	b, records, _ := epMsgSetup(t)
	at := t0.UTC()
	base := message.Record{Status: message.Accepted, EndpointID: "ep_06h3230102tq4gpdzyxsvjwpec", RecoverSince: at.Add(-time.Hour), RecoverUntil: at,
		CreatedAt: at, UpdatedAt: at}
	mk := func(change func(*message.Record)) string {
		rec := base
		rec.ID = message.NewPrefixedID(message.RecoveryIDPrefix, at)
		if err := records.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		if change != nil {
			tok := "t-" + rec.ID
			if _, err := records.Claim(t.Context(), rec.ID, store.Claim{Now: at, Lease: time.Minute, Token: tok}); err != nil {
				t.Fatal(err)
			}
			o := store.Outcome{Now: at.Add(time.Minute), Token: tok, Fanout: &store.Progress{Deliveries: 990, Matched: 1000}, Attempt: &message.Attempt{At: at}}
			r := message.Record{}
			change(&r)
			o.Status = r.Status
			if r.LastAttempt != nil {
				o.Attempt = r.LastAttempt
			}
			if _, err := records.Finish(t.Context(), rec.ID, o); err != nil {
				t.Fatal(err)
			}
		}
		return rec.ID
	}
	running := mk(nil)
	finished := mk(func(r *message.Record) { r.Status = message.Delivered })
	failed := mk(func(r *message.Record) {
		r.Status, r.LastAttempt = message.Failed, &message.Attempt{At: at, Error: "attempts exhausted"}
	})
	for id, want := range map[string]string{
		running:  `"status":"running","endpoint_id":"ep_06h3230102tq4gpdzyxsvjwpec","since":"2026-11-24T09:00:00Z"`,
		finished: `"status":"finished"`,
		failed:   `"status":"failed"`,
	} {
		r := b.do(t, "GET", PathRecoveries+"/"+id, "")
		var v RecoveryView
		_ = json.Unmarshal([]byte(r.body), &v)
		if r.status != http.StatusOK || !strings.Contains(r.body, want) {
			t.Errorf("GET %s: %d %s, want %s", id, r.status, r.body, want)
		}
		if id != running && (v.FinishedAt == nil || v.Matched != 1000 || v.Requeued != 990) {
			t.Errorf("GET %s: %+v, want finished_at and the counts", id, v)
		}
		if id == failed && v.Error != "attempts exhausted" {
			t.Errorf("failed recovery's error %q", v.Error)
		}
	}
	for _, id := range []string{message.NewPrefixedID(message.RecoveryIDPrefix, at), "rcv_x", message.NewID(at)} {
		if r := b.do(t, "GET", PathRecoveries+"/"+id, ""); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d", id, r.status)
		}
	}
	if r := b.do(t, "DELETE", PathRecoveries+"/"+running, ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", r.status)
	}
}
