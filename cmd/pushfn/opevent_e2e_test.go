package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIntegrationEndpointDisabledEvent runs a stack whose endpoints are disabled after one second
// of failure, and sends messages to an endpoint whose receiver answers 404 until it is
// disabled: the local EventBridge endpoint receives one pushfn.endpoint.disabled event for it,
// and a pushfn.delivery.failed event for each of its messages.
func TestIntegrationEndpointDisabledEvent(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, stackOptions{env: []string{"ENDPOINT_DISABLE_AFTER=1s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newTarget(t, s.key, http.StatusNotFound, 0, 0)
	var ep struct {
		ID             string `json:"id"`
		Disabled       bool   `json:"disabled"`
		DisabledReason string `json:"disabled_reason"`
	}
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", map[string]any{"url": r.url()}, &ep); code != http.StatusCreated || ep.ID == "" {
		t.Fatalf("create the endpoint: %d %+v", code, ep)
	}
	// Each message ends failed after one attempt; the first failure starts the endpoint's
	// failing time, and the first one a second or more after it disables the endpoint.
	var sent []string
	for !ep.Disabled {
		var accepted status
		if code := s.do(t, ctx, http.MethodPost, "/v1/messages", map[string]any{"endpoint_id": ep.ID, "payload": map[string]any{"n": len(sent)}}, &accepted); code != http.StatusAccepted {
			t.Fatalf("POST message %d: %d %+v", len(sent)+1, code, accepted)
		}
		if st := s.awaitFinal(t, ctx, accepted.ID); st.Status != "failed" {
			t.Fatalf("message %s: %+v, want failed", accepted.ID, st)
		}
		sent = append(sent, accepted.ID)
		if code := s.do(t, ctx, http.MethodGet, "/v1/endpoints/"+ep.ID, nil, &ep); code != http.StatusOK {
			t.Fatalf("GET the endpoint: %d", code)
		}
	}
	if ep.DisabledReason != "failing" || len(sent) < 2 {
		t.Errorf("endpoint %+v after %d messages, want disabled for failing after at least 2", ep, len(sent))
	}
	ev := s.awaitEvent(t, ctx, "pushfn.endpoint.disabled", "endpoint_id", ep.ID)
	var d struct {
		FailingSince time.Time `json:"failing_since"`
		DisabledAt   time.Time `json:"disabled_at"`
	}
	if err := json.Unmarshal(ev.Detail, &d); err != nil || d.DisabledAt.Sub(d.FailingSince) < time.Second {
		t.Errorf("detail %s (%v): want disabled_at a second or more after failing_since", ev.Detail, err)
	}
	for _, id := range sent {
		s.awaitEvent(t, ctx, "pushfn.delivery.failed", "message_id", id)
	}
	if n := strings.Count(s.logs.String(), `"detail_type":"pushfn.endpoint.disabled"`); n != 1 {
		t.Errorf("%d pushfn.endpoint.disabled events, want 1", n)
	}
}
