package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// upstream is an HTTP server that counts the requests it applied.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var applied atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		applied.Add(1)
		_, _ = io.WriteString(w, "applied")
	}))
	t.Cleanup(srv.Close)
	return srv, &applied
}

func start(t *testing.T, srv *httptest.Server) *Proxy {
	t.Helper()
	p, err := Start(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// post sends one request on a new connection and returns the body or the error.
func post(ctx context.Context, url string) (string, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("write"))
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestForwards(t *testing.T) {
	t.Parallel()
	srv, applied := upstream(t)
	p := start(t, srv)
	for range 3 {
		if body, err := post(t.Context(), p.URL()); err != nil || body != "applied" {
			t.Fatalf("through the proxy: %q, %v", body, err)
		}
	}
	if got := applied.Load(); got != 3 {
		t.Errorf("upstream applied %d requests, want 3", got)
	}
	if s := p.Stats(); s.Conns != 3 || s.Answers != 3 || s.Dropped != 0 {
		t.Errorf("stats %+v, want 3 connections and answers, none dropped", s)
	}
}

// A dropped answer is one whose request was applied: the client sees a reset, the upstream a
// request.
func TestDropEveryLosesAppliedAnswers(t *testing.T) {
	t.Parallel()
	srv, applied := upstream(t)
	p := start(t, srv)
	p.DropEvery(2)
	var failed int
	for range 6 {
		if _, err := post(t.Context(), p.URL()); err != nil {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("%d of 6 requests failed, want every second one (3)", failed)
	}
	if got := applied.Load(); got != 6 {
		t.Errorf("upstream applied %d requests, want all 6, answers lost or not", got)
	}
	if s := p.Stats(); s.Dropped != 3 || s.Answers != 6 {
		t.Errorf("stats %+v, want 6 answers, 3 dropped", s)
	}
	p.DropEvery(0)
	if body, err := post(t.Context(), p.URL()); err != nil || body != "applied" {
		t.Errorf("after DropEvery(0): %q, %v", body, err)
	}
}

func TestRefuse(t *testing.T) {
	t.Parallel()
	srv, applied := upstream(t)
	p := start(t, srv)

	// An open keep-alive connection is cut when Refuse goes on.
	client := &http.Client{}
	resp, err := client.Post(p.URL(), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	p.Refuse(true)
	if _, err := post(t.Context(), p.URL()); err == nil {
		t.Fatal("a request went through while the proxy refused connections")
	}
	if p.Stats().Refused == 0 {
		t.Errorf("stats %+v: no connection counted as refused", p.Stats())
	}
	if got := applied.Load(); got != 1 {
		t.Errorf("upstream applied %d requests, want only the one before Refuse", got)
	}
	p.Refuse(false)
	if body, err := post(t.Context(), p.URL()); err != nil || body != "applied" {
		t.Errorf("after Refuse(false): %q, %v", body, err)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	srv, applied := upstream(t)
	p := start(t, srv)
	p.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := post(ctx, p.URL()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a request held for an hour ended with %v, want the client's deadline", err)
	}
	if got := applied.Load(); got != 0 {
		t.Errorf("upstream applied %d requests during the latency, want 0", got)
	}
	p.SetLatency(0)
	_ = p.Close() // Close must not wait out the hour-long sleep of the held request's pump
}

// Refuse may cut a connection while the proxy is still dialling its upstream: the pair must
// then close the upstream end it gets, with no data race between the two. Before the pair
// guarded its upstream end, make test under load reported that race, and this test hung: an
// upstream dialled after the cut stayed open, and Close waited for its pump forever.
func TestRefuseWhileConnecting(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t)
	p := start(t, srv)
	addr := strings.TrimPrefix(p.URL(), "http://")
	for range 300 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		p.Refuse(true)
		p.Refuse(false)
		_ = c.Close()
	}
}
