package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/backoff"
)

func upper(d time.Duration) time.Duration { return d }

func TestCeiling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    backoff.Policy
		n    int
		want time.Duration
	}{
		{"first", backoff.Policy{Base: 10 * time.Second, Max: time.Hour}, 1, 10 * time.Second},
		{"second", backoff.Policy{Base: 10 * time.Second, Max: time.Hour}, 2, 20 * time.Second},
		{"ninth", backoff.Policy{Base: 10 * time.Second, Max: time.Hour}, 9, 2560 * time.Second},
		{"capped", backoff.Policy{Base: 10 * time.Second, Max: time.Hour}, 10, time.Hour},
		{"far past the cap", backoff.Policy{Base: 10 * time.Second, Max: time.Hour}, 1 << 30, time.Hour},
		{"zero or less is the first", backoff.Policy{Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"base above max", backoff.Policy{Base: time.Hour, Max: time.Minute}, 1, time.Minute},
		{"no cap", backoff.Policy{Base: time.Millisecond}, 11, 1024 * time.Millisecond},
		{"zero base", backoff.Policy{Max: time.Minute}, 5, 0},
		{"negative base", backoff.Policy{Base: -time.Second, Max: time.Minute}, 5, 0},
	}
	for _, tt := range tests {
		if got := tt.p.Ceiling(tt.n); got != tt.want {
			t.Errorf("%s: Ceiling(%d) = %s, want %s", tt.name, tt.n, got, tt.want)
		}
		tt.p.Jitter = upper
		if got := tt.p.Delay(tt.n); got != tt.want {
			t.Errorf("%s: Delay(%d) with the upper bound as jitter = %s, want %s", tt.name, tt.n, got, tt.want)
		}
	}
}

func TestCeilingNeverOverflows(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Base: time.Nanosecond}
	prev := time.Duration(0)
	for n := 1; n < 100; n++ {
		c := p.Ceiling(n)
		if c <= 0 || c < prev {
			t.Fatalf("Ceiling(%d) = %s after %s", n, c, prev)
		}
		prev = c
	}
}

func TestDelayIsFullJitter(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Base: 4 * time.Millisecond, Max: time.Second}
	var low, high bool
	for range 1000 {
		d := p.Delay(3) // ceiling 16 ms
		if d < 0 || d > 16*time.Millisecond {
			t.Fatalf("Delay(3) = %s outside [0, 16ms]", d)
		}
		low = low || d < 4*time.Millisecond
		high = high || d > 12*time.Millisecond
	}
	if !low || !high {
		t.Errorf("1,000 delays never below 4 ms (%v) or never above 12 ms (%v): not spread over [0, ceiling]", low, high)
	}
	if d := (backoff.Policy{}).Delay(3); d != 0 {
		t.Errorf("zero policy Delay = %s, want 0", d)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	if err := (backoff.Policy{Base: time.Millisecond, Jitter: upper}).Wait(context.Background(), 1); err != nil {
		t.Errorf("a 1 ms wait with a live context: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour's delay must end at once when ctx has ended, with its error.
	if err := (backoff.Policy{Base: time.Hour, Jitter: upper}).Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("an hour's wait with an ended context: %v, want context.Canceled", err)
	}
	if err := (backoff.Policy{}).Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("no delay with an ended context: %v, want context.Canceled", err)
	}
}
