// Package backoff computes retry delays: exponential from a base delay, doubling up to a maximum,
// with full jitter, as the SQS producer's re-sends and the deliver function's retries use them.
//
// Ships in all three functions.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Policy shapes the delays. Its fields are set once; it is then safe for concurrent use.
type Policy struct {
	// Base is the ceiling of the first delay; each further try doubles it.
	Base time.Duration
	// Max caps the ceiling; zero means no cap.
	Max time.Duration
	// Jitter returns a duration in [0, d]; nil means uniformly random. Tests pass one that
	// returns d, so delays are the ceilings.
	Jitter func(d time.Duration) time.Duration
}

// Ceiling is the longest delay before try n (1-based): Base doubled n-1 times, capped at Max,
// never negative.
func (p Policy) Ceiling(n int) time.Duration {
	d := max(p.Base, 0)
	for i := 1; i < n && d > 0 && (p.Max <= 0 || d < p.Max) && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return d
}

// Delay is the delay before try n: uniformly random in [0, Ceiling(n)] (full jitter, so many
// callers failing together do not retry together).
func (p Policy) Delay(n int) time.Duration {
	d := p.Ceiling(n)
	if p.Jitter != nil {
		return p.Jitter(d)
	}
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// Wait waits Delay(n), or until ctx ends, and returns ctx's error: nil when the whole delay
// passed with ctx still live.
func (p Policy) Wait(ctx context.Context, n int) error {
	d := p.Delay(n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err()
}
