package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/store"
)

// RunSlots runs the conformance suite of store.Slots against the stores newStore returns. Every
// subtest uses endpoint ids of its own, so newStore may hand out stores sharing one table.
func RunSlots(t *testing.T, newStore func(t *testing.T) store.Slots) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s store.Slots)
	}{
		{"FirstStartsAtNow", testSlotsFirstStartsAtNow},
		{"BlocksFollow", testSlotsBlocksFollow},
		{"ConcurrentNeverOverlap", testSlotsConcurrentNeverOverlap},
		{"PastNextRestarts", testSlotsPastNextRestarts},
		{"RateChangeRestarts", testSlotsRateChangeRestarts},
		{"EndpointsApart", testSlotsEndpointsApart},
		{"InvalidArguments", testSlotsInvalidArguments},
		{"CanceledContext", testSlotsCanceledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// nowSec is a current second, on the hour: slot numbers near real ones. It is taken from the
// real clock because a counter's ttl is a day after its slot's second, and DynamoDB Local deletes
// items whose ttl has passed: a fixed date would make the counters vanish once it is a day old.
var nowSec = time.Now().Truncate(time.Hour).Unix()

func reserve(t *testing.T, s store.Slots, ep string, rate int, nowSlot int64, k int) int64 {
	t.Helper()
	first, err := s.ReserveSlots(context.Background(), ep, rate, nowSlot, k)
	if err != nil {
		t.Fatalf("ReserveSlots(%s, rate %d, now %d, k %d): %v", ep, rate, nowSlot, k, err)
	}
	return first
}

func newEndpointID() string { return endpoint.NewID(time.Now()) }

func testSlotsFirstStartsAtNow(t *testing.T, s store.Slots) {
	now := nowSec * 5
	if first := reserve(t, s, newEndpointID(), 5, now, 10); first != now {
		t.Errorf("first block of a new counter starts at %d, want nowSlot %d", first, now)
	}
}

func testSlotsBlocksFollow(t *testing.T, s store.Slots) {
	ep := newEndpointID()
	now := nowSec * 50
	a := reserve(t, s, ep, 50, now, 10)
	b := reserve(t, s, ep, 50, now, 25)
	c := reserve(t, s, ep, 50, now+3, 10) // nowSlot moved, still behind next
	if a != now || b != now+10 || c != now+35 {
		t.Errorf("blocks start at %d, %d, %d; want %d, %d, %d", a, b, c, now, now+10, now+35)
	}
}

// Blocks reserved at once by many containers never share a slot, and none starts before nowSlot.
func testSlotsConcurrentNeverOverlap(t *testing.T, s store.Slots) {
	ep := newEndpointID()
	now := nowSec * 5
	const workers, each, k = 8, 6, 10
	var mu sync.Mutex
	var firsts []int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				first, err := s.ReserveSlots(context.Background(), ep, 5, now, k)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				firsts = append(firsts, first)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(firsts) != workers*each {
		t.Fatalf("%d blocks, want %d", len(firsts), workers*each)
	}
	slices.Sort(firsts)
	if firsts[0] < now {
		t.Errorf("a block starts at %d, before nowSlot %d", firsts[0], now)
	}
	for i := 1; i < len(firsts); i++ {
		if firsts[i] < firsts[i-1]+k {
			t.Errorf("blocks at %d and %d overlap (k %d)", firsts[i-1], firsts[i], k)
		}
	}
}

// A counter whose next slot has passed restarts at nowSlot: no slot in the past is handed out.
func testSlotsPastNextRestarts(t *testing.T, s store.Slots) {
	ep := newEndpointID()
	reserve(t, s, ep, 5, nowSec*5, 10)
	later := (nowSec + 60) * 5
	if first := reserve(t, s, ep, 5, later, 10); first != later {
		t.Errorf("after a minute idle, the block starts at %d, want nowSlot %d", first, later)
	}
	if first := reserve(t, s, ep, 5, later, 10); first != later+10 {
		t.Errorf("the next block starts at %d, want %d", first, later+10)
	}
}

// A new rate starts a new numbering in the first second the old one left unreserved, at most
// 2 seconds ahead: no second holds slots of both.
func testSlotsRateChangeRestarts(t *testing.T, s store.Slots) {
	for _, tc := range []struct {
		name          string
		oldRate, rate int
		oldFirst      int64 // the old block, in slots after the old rate's first slot of nowSec
		oldK          int
		want          int64
	}{
		// old slots up to 2.2 s ahead: the new ones would start 3 s ahead, capped at 2 s.
		{"busy, up", 5, 10, 0, 11, (nowSec + 2) * 10},
		// old slots filling the current second exactly: the new ones start in the next second.
		{"whole second", 5, 10, 0, 5, (nowSec + 1) * 10},
		// old slots in part of the current second: the new ones start in the next second.
		{"this second, down", 10, 2, 0, 3, (nowSec + 1) * 2},
		// old slots all in the past: the new ones start now.
		{"idle", 10, 5, -40, 10, nowSec * 5},
		// old slots a long way ahead (a backlog): the new ones start 2 s ahead.
		{"backlog", 1, 10, 0, 600, (nowSec + 2) * 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := newEndpointID()
			old := nowSec*int64(tc.oldRate) + tc.oldFirst
			if got := reserve(t, s, ep, tc.oldRate, old, tc.oldK); got != old {
				t.Fatalf("old block at %d, want %d", got, old)
			}
			if got := reserve(t, s, ep, tc.rate, nowSec*int64(tc.rate), 10); got != tc.want {
				t.Errorf("first block at the new rate starts at %d (second %d), want %d (second %d)",
					got, got/int64(tc.rate), tc.want, tc.want/int64(tc.rate))
			}
			if got := reserve(t, s, ep, tc.rate, nowSec*int64(tc.rate), 10); got != tc.want+10 {
				t.Errorf("second block at the new rate starts at %d, want %d", got, tc.want+10)
			}
		})
	}
}

func testSlotsEndpointsApart(t *testing.T, s store.Slots) {
	a, b := newEndpointID(), newEndpointID()
	now := nowSec * 20
	reserve(t, s, a, 20, now, 10)
	if first := reserve(t, s, b, 20, now, 10); first != now {
		t.Errorf("another endpoint's first block starts at %d, want %d", first, now)
	}
}

func testSlotsInvalidArguments(t *testing.T, s store.Slots) {
	for _, tc := range []struct {
		name    string
		ep      string
		rate    int
		nowSlot int64
		k       int
	}{
		{"no endpoint", "", 5, 100, 10},
		{"zero rate", newEndpointID(), 0, 100, 10},
		{"negative now", newEndpointID(), 5, -1, 10},
		{"empty block", newEndpointID(), 5, 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ReserveSlots(context.Background(), tc.ep, tc.rate, tc.nowSlot, tc.k)
			if !errors.Is(err, store.ErrSlotArgs) {
				t.Errorf("ReserveSlots = %v, want ErrSlotArgs", err)
			}
		})
	}
}

func testSlotsCanceledContext(t *testing.T, s store.Slots) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ReserveSlots(ctx, newEndpointID(), 5, nowSec*5, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("ReserveSlots = %v, want context.Canceled", err)
	}
}
