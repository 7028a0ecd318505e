package main

import (
	"context"
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

func TestReceiverStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- receiverCmd(ctx, []string{"--addr", "127.0.0.1:0", "--quiet"}) }()
	time.Sleep(50 * time.Millisecond) // let it listen; the test holds either way
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("receiver did not stop")
	}
}
