// Package ratelimit hands out the send slots of rate-limited endpoints within one container,
// reserving them in blocks from a numbering shared by every container (store.Slots).
//
// At a rate of r per second, slot n belongs to the calendar second S = n/r (Unix seconds); the
// r slots of a second start in its first half, slot n at S + (n mod r) x 0.5 s / r, and a slot
// may be used from its start until S + 0.7 s. Since every slot number is handed out once, no
// calendar second sees more than r sends start.
//
// Ships in the deliver function.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Slot timing within its second.
const (
	// Burst is the part of a second over which its slots start: bursts of one second's worth.
	Burst = 500 * time.Millisecond
	// UsableFor is how long after its second begins a slot may still be taken to send.
	UsableFor = 700 * time.Millisecond
	// SendBy is how long after its second begins the send of a taken slot must start; the rest
	// of the second is left for the push to reach its receiver.
	SendBy = 900 * time.Millisecond
)

// MinBlock is the fewest slots a container reserves at once: the shared state costs at most one
// write per MinBlock slots handed out.
const MinBlock = 10

// Slot is one send slot of an endpoint, numbered at Rate per second.
type Slot struct {
	N    int64
	Rate int
}

// second is the Unix second the slot belongs to.
func (s Slot) second() time.Time { return time.Unix(s.N/int64(s.Rate), 0) }

// Start is when the slot's send may start.
func (s Slot) Start() time.Time {
	j := s.N % int64(s.Rate)
	return s.second().Add(time.Duration(j) * Burst / time.Duration(s.Rate))
}

// End is when the slot can no longer be taken to send: UsableFor into its second.
func (s Slot) End() time.Time { return s.second().Add(UsableFor) }

// SendBy is when a send under the slot must have started: SendBy into its second.
func (s Slot) SendBy() time.Time { return s.second().Add(SendBy) }

// Usable reports whether the slot may still be taken at now.
func (s Slot) Usable(now time.Time) bool { return now.Before(s.End()) }

// NowSlot is the first slot at rate that is still usable at now: the first of the current
// second until UsableFor into it, else the first of the next second.
func NowSlot(now time.Time, rate int) int64 {
	sec := now.Unix()
	if now.Sub(time.Unix(sec, 0)) >= UsableFor {
		sec++
	}
	return sec * int64(rate)
}

// Reserver reserves blocks of slots in the shared numbering; store.Slots is one.
type Reserver interface {
	ReserveSlots(ctx context.Context, endpointID string, rate int, nowSlot int64, k int) (first int64, err error)
}

// Limiter hands out the slots of each endpoint from blocks it reserves through Reserver, one
// reservation at a time per endpoint, dropping the slots that pass unused. It is safe for
// concurrent use; its zero value needs a Reserver.
type Limiter struct {
	Reserver Reserver

	mu  sync.Mutex
	eps map[string]*block
}

// New returns a Limiter reserving through r.
func New(r Reserver) *Limiter { return &Limiter{Reserver: r} }

// block is what a Limiter holds of one endpoint: the slots [next, end) at rate not handed out
// yet, the reservation in flight if any, and the demand of the last two seconds.
type block struct {
	rate      int
	next, end int64
	reserving chan struct{} // closed when the reservation in flight ends
	sec       int64         // the second taken counts
	taken     int           // slots handed out in second sec
	prevTaken int           // in the second before
}

// Take hands out the next slot of endpointID at rate: one still usable at now, possibly in a
// later second (the caller waits for its start or defers the send). It reserves a new block when
// the current one is used up or has passed, sized to the demand of the last two seconds: from
// MinBlock to rate (MinBlock when rate is lower). Concurrent calls for one endpoint share one
// reservation.
func (l *Limiter) Take(ctx context.Context, endpointID string, rate int, now time.Time) (Slot, error) {
	if rate < 1 {
		return Slot{}, fmt.Errorf("rate limit slot of %s: rate is %d, must be at least 1", endpointID, rate)
	}
	for {
		l.mu.Lock()
		b := l.block(endpointID, rate)
		b.count(now)
		b.next = max(b.next, NowSlot(now, rate))
		if b.next < b.end {
			n := b.next
			b.next++
			b.taken++
			l.mu.Unlock()
			return Slot{N: n, Rate: rate}, nil
		}
		if wait := b.reserving; wait != nil {
			l.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return Slot{}, fmt.Errorf("rate limit slot of %s: %w", endpointID, ctx.Err())
			}
		}
		k := b.size()
		done := make(chan struct{})
		b.reserving = done
		l.mu.Unlock()

		first, err := l.Reserver.ReserveSlots(ctx, endpointID, rate, NowSlot(now, rate), k)

		l.mu.Lock()
		b.reserving = nil
		close(done)
		if err == nil && b.rate == rate {
			b.next, b.end = first, first+int64(k)
		}
		l.mu.Unlock()
		if err != nil {
			return Slot{}, fmt.Errorf("rate limit slot of %s: %w", endpointID, err)
		}
	}
}

// block returns endpointID's block, emptied if it was reserved at another rate. l.mu is held.
func (l *Limiter) block(endpointID string, rate int) *block {
	if l.eps == nil {
		l.eps = map[string]*block{}
	}
	b := l.eps[endpointID]
	if b == nil {
		b = &block{rate: rate}
		l.eps[endpointID] = b
	}
	if b.rate != rate {
		b.rate, b.next, b.end = rate, 0, 0
	}
	return b
}

// count moves the demand counts to now's second.
func (b *block) count(now time.Time) {
	sec := now.Unix()
	switch {
	case sec == b.sec:
	case sec == b.sec+1:
		b.prevTaken, b.taken, b.sec = b.taken, 0, sec
	default:
		b.prevTaken, b.taken, b.sec = 0, 0, sec
	}
}

// size is the number of slots to reserve: the demand of the last two seconds, at least MinBlock
// and at most a second's worth (when that is more than MinBlock).
func (b *block) size() int {
	return min(max(b.taken+b.prevTaken+1, MinBlock), max(b.rate, MinBlock))
}
