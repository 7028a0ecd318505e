package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/receiver"
	"github.com/pushfn/pushfn/shared/push"
)

func TestBenchDeliver(t *testing.T) {
	t.Parallel()
	key, err := push.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver.Receiver{Keys: [][]byte{key}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	if err := benchCmd(context.Background(), []string{"deliver", "--url", srv.URL, "--n", "50", "--size", "64", "--conc", "5"}); err != nil {
		t.Fatal(err)
	}
	if c := rc.Counts(); c.Received != 50 || c.Distinct != 50 || c.SignatureOK != 50 || c.Bytes != 50*64 {
		t.Fatalf("receiver counts %+v, want 50 distinct signed pushes of 64 bytes", c)
	}
}

func TestBenchAndReceiverRefuseBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(context.Context, []string) error
		args []string
	}{
		{"bench without deliver", benchCmd, nil},
		{"bench size too small", benchCmd, []string{"deliver", "--size", "3"}},
		{"bench unknown flag", benchCmd, []string{"deliver", "--nope"}},
		{"receiver bad secret", receiverCmd, []string{"--secret", "nope"}},
		{"receiver bad address", receiverCmd, []string{"--addr", "256.0.0.1:99999"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.run(context.Background(), tt.args); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestReceiverServesUntilItsContextEnds starts the receiver command, waits until it answers,
// then ends its context: the command must return nil and stop accepting connections.
func TestReceiverServesUntilItsContextEnds(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- receiverCmd(ctx, []string{"--addr", addr, "--quiet"}) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + receiver.StatsPath)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200", receiver.StatsPath, resp.StatusCode)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the receiver ended before it answered: %v", err)
		case <-time.After(10 * time.Millisecond): // poll until it listens
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver did not answer on %s: %v", addr, err)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("receiver did not stop")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatalf("%s still accepts connections after the receiver stopped", addr)
	}
}

// freeAddr returns a loopback address with a port no one listened on a moment ago, for a command
// that takes an address rather than a listener.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
