package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/ratelimit"
	"github.com/pushfn/pushfn/shared/store"
)

// base is a whole second; times in the tests are offsets from it.
var base = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func TestSlotTimes(t *testing.T) {
	t.Parallel()
	sec := base.Unix()
	for _, tc := range []struct {
		name               string
		slot               ratelimit.Slot
		start, end, sendBy time.Time
	}{
		{"first of 5/s", ratelimit.Slot{N: sec * 5, Rate: 5}, at(0), at(700 * time.Millisecond), at(900 * time.Millisecond)},
		{"last of 5/s", ratelimit.Slot{N: sec*5 + 4, Rate: 5}, at(400 * time.Millisecond), at(700 * time.Millisecond), at(900 * time.Millisecond)},
		{"next second of 5/s", ratelimit.Slot{N: sec*5 + 5, Rate: 5}, at(time.Second), at(1700 * time.Millisecond), at(1900 * time.Millisecond)},
		{"1/s", ratelimit.Slot{N: sec + 3, Rate: 1}, at(3 * time.Second), at(3700 * time.Millisecond), at(3900 * time.Millisecond)},
		{"last of 10000/s", ratelimit.Slot{N: sec*10000 + 9999, Rate: 10000}, at(499950 * time.Microsecond), at(700 * time.Millisecond), at(900 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.slot.Start(); !got.Equal(tc.start) {
				t.Errorf("Start = %v, want %v", got, tc.start)
			}
			if got := tc.slot.End(); !got.Equal(tc.end) {
				t.Errorf("End = %v, want %v", got, tc.end)
			}
			if got := tc.slot.SendBy(); !got.Equal(tc.sendBy) {
				t.Errorf("SendBy = %v, want %v", got, tc.sendBy)
			}
			if !tc.slot.Usable(tc.end.Add(-time.Nanosecond)) || tc.slot.Usable(tc.end) {
				t.Errorf("Usable is not true just before End and false at End")
			}
		})
	}
}

func TestNowSlot(t *testing.T) {
	t.Parallel()
	sec := base.Unix()
	for _, tc := range []struct {
		name string
		now  time.Time
		rate int
		want int64
	}{
		{"second begins", at(0), 5, sec * 5},
		{"just before the usable end", at(699 * time.Millisecond), 5, sec * 5},
		{"at the usable end: next second", at(700 * time.Millisecond), 5, (sec + 1) * 5},
		{"late in the second", at(999 * time.Millisecond), 50, (sec + 1) * 50},
		{"rate 1", at(2300 * time.Millisecond), 1, sec + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ratelimit.NowSlot(tc.now, tc.rate); got != tc.want {
				t.Errorf("NowSlot = %d, want %d", got, tc.want)
			}
		})
	}
}

func take(t *testing.T, l *ratelimit.Limiter, ep string, rate int, now time.Time) ratelimit.Slot {
	t.Helper()
	s, err := l.Take(context.Background(), ep, rate, now)
	if err != nil {
		t.Fatalf("Take(%s, %d, %v): %v", ep, rate, now, err)
	}
	if !s.Usable(now) {
		t.Fatalf("Take at %v handed out slot %d, which ended at %v", now, s.N, s.End())
	}
	return s
}

// Slots are handed out from one block until it is used up: one write per MinBlock slots.
func TestTakeReusesBlock(t *testing.T) {
	t.Parallel()
	mem := &store.MemorySlots{}
	l := ratelimit.New(mem)
	sec := base.Unix()
	for i := range 25 {
		s := take(t, l, "ep_a", 5, at(100*time.Millisecond))
		if want := sec*5 + int64(i); s.N != want {
			t.Fatalf("slot %d is %d, want %d", i, s.N, want)
		}
	}
	if w := mem.Writes(); w != 3 {
		t.Errorf("%d reservations for 25 slots at 5/s, want 3 (blocks of %d)", w, ratelimit.MinBlock)
	}
}

// Slots that passed unused are dropped: a take later gets a usable slot, from a new block.
func TestTakeDropsPassedSlots(t *testing.T) {
	t.Parallel()
	mem := &store.MemorySlots{}
	l := ratelimit.New(mem)
	sec := base.Unix()
	first := take(t, l, "ep_a", 5, at(100*time.Millisecond))
	// Still in the block (slots of seconds sec and sec+1), past the usable end of sec's.
	s := take(t, l, "ep_a", 5, at(800*time.Millisecond))
	if s.N != (sec+1)*5 {
		t.Errorf("slot at 0.8 s is %d, want the first of the next second %d", s.N, (sec+1)*5)
	}
	if w := mem.Writes(); w != 1 {
		t.Errorf("%d reservations, want 1: the block still had usable slots", w)
	}
	s = take(t, l, "ep_a", 5, at(5*time.Second))
	if s.N != (sec+5)*5 || s.N <= first.N {
		t.Errorf("slot at 5 s is %d, want %d", s.N, (sec+5)*5)
	}
	if w := mem.Writes(); w != 2 {
		t.Errorf("%d reservations, want 2: the first block had passed", w)
	}
}

// A block is sized to demand: a busy endpoint at a high rate reserves a second's worth at once.
func TestTakeSizesBlockToDemand(t *testing.T) {
	t.Parallel()
	mem := &store.MemorySlots{}
	l := ratelimit.New(mem)
	for range 10 {
		take(t, l, "ep_a", 1000, at(10*time.Millisecond))
	}
	if w := mem.Writes(); w != 1 {
		t.Fatalf("%d reservations for the first 10 slots, want 1", w)
	}
	for range 190 {
		take(t, l, "ep_a", 1000, at(20*time.Millisecond))
	}
	// Blocks grow with the slots taken: 10, 11, 22, 44, 88, 176 cover 200 with 6 writes, where
	// blocks of MinBlock would take 20.
	if w := mem.Writes(); w > 6 {
		t.Errorf("%d reservations for 200 slots at 1000/s, want at most 6", w)
	}
}

// A rate change drops the block of the old rate; the new one starts a numbering of its own.
func TestTakeRateChange(t *testing.T) {
	t.Parallel()
	mem := &store.MemorySlots{}
	l := ratelimit.New(mem)
	sec := base.Unix()
	take(t, l, "ep_a", 5, at(100*time.Millisecond))
	s := take(t, l, "ep_a", 10, at(200*time.Millisecond))
	if s.Rate != 10 || s.N != (sec+2)*10 {
		t.Errorf("slot after the change is %+v, want %d at 10/s (the old block held 2 seconds)", s, (sec+2)*10)
	}
	if w := mem.Writes(); w != 2 {
		t.Errorf("%d reservations, want 2", w)
	}
}

// Concurrent takes never share a slot, and share reservations: one write per block.
func TestTakeConcurrent(t *testing.T) {
	t.Parallel()
	mem := &store.MemorySlots{}
	l := ratelimit.New(mem)
	const n = 200
	slots := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := l.Take(context.Background(), "ep_a", 5, at(100*time.Millisecond))
			if err != nil {
				t.Error(err)
			}
			slots[i] = s.N
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, n := range slots {
		if seen[n] {
			t.Errorf("slot %d handed out twice", n)
		}
		seen[n] = true
	}
	if w := mem.Writes(); w != n/ratelimit.MinBlock {
		t.Errorf("%d reservations for %d slots, want %d", w, n, n/ratelimit.MinBlock)
	}
}

var errDown = errors.New("table unreachable")

type failing struct{}

func (failing) ReserveSlots(context.Context, string, int, int64, int) (int64, error) {
	return 0, errDown
}

// blocked is a reserver whose reservations wait until release is closed.
type blocked struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocked) ReserveSlots(ctx context.Context, _ string, _ int, nowSlot int64, _ int) (int64, error) {
	b.entered <- struct{}{}
	<-b.release
	return nowSlot, nil
}

func TestTakeErrors(t *testing.T) {
	t.Parallel()
	t.Run("reservation fails", func(t *testing.T) {
		t.Parallel()
		_, err := ratelimit.New(failing{}).Take(context.Background(), "ep_a", 5, at(0))
		if !errors.Is(err, errDown) {
			t.Errorf("Take = %v, want the reservation's error", err)
		}
	})
	t.Run("no rate", func(t *testing.T) {
		t.Parallel()
		if _, err := ratelimit.New(&store.MemorySlots{}).Take(context.Background(), "ep_a", 0, at(0)); err == nil {
			t.Error("Take at rate 0 succeeded")
		}
	})
	t.Run("context ends while another reserves", func(t *testing.T) {
		t.Parallel()
		r := &blocked{entered: make(chan struct{}, 1), release: make(chan struct{})}
		l := ratelimit.New(r)
		go func() { _, _ = l.Take(context.Background(), "ep_a", 5, at(0)) }()
		<-r.entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Take(ctx, "ep_a", 5, at(0)); !errors.Is(err, context.Canceled) {
			t.Errorf("Take = %v, want context.Canceled", err)
		}
		close(r.release)
	})
}
