package endpoint

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var errNotThere = errors.New("not there")

// counted is a Cache whose Load counts its calls and answers "value of <id> #<n>", or errNotThere
// for ids starting "gone", or errDown while down is set.
type counted struct {
	cache *Cache[string]
	clock *clock
	loads atomic.Int64
	down  atomic.Bool
	// gate, when set, holds every Load until it is closed.
	gate chan struct{}
}

var errDown = errors.New("store down")

func newCounted() *counted {
	c := &counted{clock: &clock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}}
	c.cache = &Cache[string]{
		Now:  c.clock.Now,
		Keep: func(err error) bool { return errors.Is(err, errNotThere) },
		Load: func(ctx context.Context, id string) (string, error) {
			n := c.loads.Add(1)
			if c.gate != nil {
				select {
				case <-c.gate:
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
			switch {
			case c.down.Load():
				return "", errDown
			case len(id) >= 4 && id[:4] == "gone":
				return "", errNotThere
			}
			return id + " #" + string(rune('0'+n)), nil
		},
	}
	return c
}

func TestCacheReadsOncePerTTL(t *testing.T) {
	t.Parallel()
	c := newCounted()
	ctx := context.Background()
	get := func(id string) string {
		t.Helper()
		v, err := c.cache.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		return v
	}
	if v := get("a"); v != "a #1" {
		t.Fatalf("first Get = %q", v)
	}
	c.clock.add(DefaultCacheTTL - time.Nanosecond)
	if v := get("a"); v != "a #1" || c.loads.Load() != 1 {
		t.Fatalf("Get within the TTL = %q after %d loads, want the kept value after 1", v, c.loads.Load())
	}
	if v := get("b"); v != "b #2" {
		t.Fatalf("another id = %q, want its own read", v)
	}
	c.clock.add(time.Nanosecond)
	if v := get("a"); v != "a #3" || c.loads.Load() != 3 {
		t.Fatalf("Get at the TTL = %q after %d loads, want a new read", v, c.loads.Load())
	}
	// A clock that went back does not keep a value past its time.
	c.clock.add(-time.Hour)
	if v := get("a"); v != "a #4" {
		t.Fatalf("Get after the clock went back = %q, want a new read", v)
	}
}

func TestCacheTTLSetting(t *testing.T) {
	t.Parallel()
	c := newCounted()
	c.cache.TTL = time.Second
	_, _ = c.cache.Get(context.Background(), "a")
	c.clock.add(time.Second)
	_, _ = c.cache.Get(context.Background(), "a")
	if n := c.loads.Load(); n != 2 {
		t.Fatalf("%d loads with a TTL of 1 s after 1 s, want 2", n)
	}
}

func TestCacheSingleFlight(t *testing.T) {
	t.Parallel()
	c := newCounted()
	c.gate = make(chan struct{})
	const n = 500
	var wg sync.WaitGroup
	vals := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals[i], errs[i] = c.cache.Get(context.Background(), "ep")
		}()
	}
	// Every Get is waiting on the one read in flight before the read may end.
	for c.loads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(c.gate)
	wg.Wait()
	if got := c.loads.Load(); got != 1 {
		t.Fatalf("%d concurrent Gets of one id made %d reads, want 1", n, got)
	}
	for i := range n {
		if errs[i] != nil || vals[i] != "ep #1" {
			t.Fatalf("Get #%d = %q, %v", i, vals[i], errs[i])
		}
	}
}

func TestCacheErrors(t *testing.T) {
	t.Parallel()
	c := newCounted()
	ctx := context.Background()

	// A kept error (the endpoint does not exist) is an answer: not read again within the TTL.
	for range 3 {
		if _, err := c.cache.Get(ctx, "gone1"); !errors.Is(err, errNotThere) {
			t.Fatalf("Get of a missing id: %v, want errNotThere", err)
		}
	}
	if n := c.loads.Load(); n != 1 {
		t.Fatalf("a missing id read %d times within the TTL, want 1", n)
	}

	// Another error is not kept: the next Get reads again, and gets the value once it can.
	c.down.Store(true)
	if _, err := c.cache.Get(ctx, "a"); !errors.Is(err, errDown) {
		t.Fatalf("Get while the store is down: %v", err)
	}
	c.down.Store(false)
	if v, err := c.cache.Get(ctx, "a"); err != nil || v != "a #3" {
		t.Fatalf("Get after the store came back = %q, %v; want a new read", v, err)
	}
}

func TestCacheWaiterGivesUp(t *testing.T) {
	t.Parallel()
	c := newCounted()
	c.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := c.cache.Get(context.Background(), "a")
		first <- err
	}()
	for c.loads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// A second Get whose context ends stops waiting, and does not end the read it waits for.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.cache.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with an ended context: %v, want context.Canceled", err)
	}
	close(c.gate)
	if err := <-first; err != nil {
		t.Fatalf("the Get that started the read: %v", err)
	}
	if v, err := c.cache.Get(context.Background(), "a"); err != nil || v != "a #1" || c.loads.Load() != 1 {
		t.Fatalf("Get after = %q, %v after %d reads; want the value read once", v, err, c.loads.Load())
	}
}

func TestCacheSweepsStaleEntries(t *testing.T) {
	t.Parallel()
	c := newCounted()
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		_, _ = c.cache.Get(ctx, id)
	}
	c.clock.add(DefaultCacheTTL)
	_, _ = c.cache.Get(ctx, "d")
	if n := c.cache.Len(); n != 1 {
		t.Fatalf("%d entries after the TTL and a new read, want 1 (the stale ones dropped)", n)
	}
}

func TestCacheLoadPanics(t *testing.T) {
	t.Parallel()
	calls := 0
	c := &Cache[int]{Load: func(context.Context, string) (int, error) {
		calls++
		if calls == 1 {
			panic("boom")
		}
		return 7, nil
	}}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the Load's panic did not reach the Get that ran it")
			}
		}()
		_, _ = c.Get(context.Background(), "a")
	}()
	if v, err := c.Get(context.Background(), "a"); err != nil || v != 7 {
		t.Fatalf("Get after a panicked read = %d, %v; want a new read", v, err)
	}
}
