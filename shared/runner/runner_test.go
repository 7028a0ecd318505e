package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunResults(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprint("host", i%3)
	}
	results := Runner{Limit: 4, PerKey: 2}.Run(context.Background(), len(keys), func(i int) string { return keys[i] }, func(ctx context.Context, i int) error {
		switch i % 5 {
		case 1:
			return fmt.Errorf("item %d: %w", i, boom)
		case 2:
			panic(fmt.Sprint("panic ", i))
		}
		return nil
	})
	if len(results) != len(keys) {
		t.Fatalf("%d results for %d items", len(results), len(keys))
	}
	for i, err := range results {
		var pe *PanicError
		switch i % 5 {
		case 1:
			if !errors.Is(err, boom) {
				t.Errorf("item %d: %v, want boom", i, err)
			}
		case 2:
			if !errors.As(err, &pe) || pe.Value != fmt.Sprint("panic ", i) || len(pe.Stack) == 0 {
				t.Errorf("item %d: %v, want its panic", i, err)
			}
		default:
			if err != nil {
				t.Errorf("item %d: %v, want nil", i, err)
			}
		}
	}
}

func TestRunKeyPanics(t *testing.T) {
	t.Parallel()
	var ran atomic.Int32
	results := Runner{Limit: 2}.Run(context.Background(), 3, func(i int) string {
		if i == 1 {
			panic("bad key")
		}
		return "k"
	}, func(ctx context.Context, i int) error {
		ran.Add(1)
		return nil
	})
	var pe *PanicError
	if results[0] != nil || results[2] != nil || !errors.As(results[1], &pe) || ran.Load() != 2 {
		t.Fatalf("results %v, %d ran", results, ran.Load())
	}
}

func TestRunEmpty(t *testing.T) {
	t.Parallel()
	if got := (Runner{}).Run(context.Background(), 0, nil, func(context.Context, int) error { return nil }); len(got) != 0 {
		t.Fatalf("results %v", got)
	}
}

// gauge tracks the items running at once, overall and per key, and the highest counts seen.
type gauge struct {
	mu       sync.Mutex
	now, max int
	perKey   map[string]int
	maxKey   map[string]int
}

func (g *gauge) enter(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now++
	g.max = max(g.max, g.now)
	g.perKey[key]++
	g.maxKey[key] = max(g.maxKey[key], g.perKey[key])
}

func (g *gauge) leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now--
	g.perKey[key]--
}

func TestRunLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		limit, perKey int
		keys          int
		items         int
	}{
		{"global only", 8, 0, 1, 200},
		{"per key under global", 16, 3, 4, 200},
		{"per key only", 0, 2, 5, 100},
		{"one key", 10, 4, 1, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := &gauge{perKey: map[string]int{}, maxKey: map[string]int{}}
			keys := make([]string, tt.items)
			for i := range keys {
				keys[i] = fmt.Sprint("k", i%tt.keys)
			}
			results := Runner{Limit: tt.limit, PerKey: tt.perKey}.Run(context.Background(), len(keys), func(i int) string { return keys[i] }, func(ctx context.Context, i int) error {
				g.enter(keys[i])
				defer g.leave(keys[i])
				time.Sleep(time.Millisecond) // let items overlap
				return nil
			})
			for i, err := range results {
				if err != nil {
					t.Fatalf("item %d: %v", i, err)
				}
			}
			if tt.limit > 0 && g.max > tt.limit {
				t.Errorf("%d items ran at once, limit %d", g.max, tt.limit)
			}
			for k, m := range g.maxKey {
				if tt.perKey > 0 && m > tt.perKey {
					t.Errorf("key %s: %d items ran at once, limit %d", k, m, tt.perKey)
				}
			}
		})
	}
}

// TestRunSlowKeyDoesNotStarveOthers blocks every item of one key and shows the other key's items
// all run meanwhile, while the blocked key never exceeds its limit.
func TestRunSlowKeyDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	const perKey = 2
	var keys []string
	for range 20 {
		keys = append(keys, "slow")
	}
	for range 30 {
		keys = append(keys, "fast")
	}
	release := make(chan struct{})
	var slowRunning, slowMax, fastDone atomic.Int32
	allFast := make(chan struct{})
	go func() {
		<-allFast
		close(release)
	}()
	results := Runner{Limit: 4, PerKey: perKey}.Run(context.Background(), len(keys), func(i int) string { return keys[i] }, func(ctx context.Context, i int) error {
		if keys[i] == "fast" {
			if fastDone.Add(1) == 30 {
				close(allFast)
			}
			return nil
		}
		n := slowRunning.Add(1)
		defer slowRunning.Add(-1)
		for {
			m := slowMax.Load()
			if n <= m || slowMax.CompareAndSwap(m, n) {
				break
			}
		}
		<-release // held until every fast item has run
		return nil
	})
	for i, err := range results {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if fastDone.Load() != 30 {
		t.Fatalf("%d fast items ran", fastDone.Load())
	}
	if m := slowMax.Load(); m > perKey || m == 0 {
		t.Fatalf("slow key ran %d at once, limit %d", m, perKey)
	}
}

func TestRunStopsBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	keys := make([]string, 10)
	var ran atomic.Int32
	// The deadline is an hour away: items with a 59-minute timeout fit only without the margin.
	tests := []struct {
		name    string
		r       Runner
		started int
	}{
		{"fits", Runner{Limit: 2, Timeout: 50 * time.Minute, Margin: time.Minute}, 10},
		{"timeout plus margin too long", Runner{Limit: 2, Timeout: 59 * time.Minute, Margin: 2 * time.Minute}, 0},
	}
	for _, tt := range tests {
		ran.Store(0)
		results := tt.r.Run(ctx, len(keys), func(i int) string { return keys[i] }, func(ctx context.Context, i int) error {
			ran.Add(1)
			if d, ok := ctx.Deadline(); !ok || time.Until(d) > tt.r.Timeout {
				return fmt.Errorf("item deadline %v, want within %s", d, tt.r.Timeout)
			}
			return nil
		})
		started := 0
		for i, err := range results {
			switch {
			case errors.Is(err, ErrNotStarted):
			case err == nil:
				started++
			default:
				t.Errorf("%s: item %d: %v", tt.name, i, err)
			}
		}
		if started != tt.started || int(ran.Load()) != tt.started {
			t.Errorf("%s: %d started, %d ran, want %d", tt.name, started, ran.Load(), tt.started)
		}
	}
}

// TestRunStopsMidway lets the deadline arrive while items run: the rest are not started and no
// started item is lost.
func TestRunStopsMidway(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	keys := make([]string, 100)
	var ran atomic.Int32
	results := Runner{Limit: 3}.Run(ctx, len(keys), func(i int) string { return keys[i] }, func(ctx context.Context, i int) error {
		if ran.Add(1) == 10 {
			cancel()
		}
		return nil
	})
	var started, notStarted int
	for _, err := range results {
		switch {
		case err == nil:
			started++
		case errors.Is(err, ErrNotStarted):
			notStarted++
		}
	}
	if started != int(ran.Load()) || started+notStarted != len(keys) || notStarted == 0 {
		t.Fatalf("started %d (ran %d), not started %d of %d", started, ran.Load(), notStarted, len(keys))
	}
}

func BenchmarkRun(b *testing.B) {
	for _, tc := range []struct{ items, limit, perKey, hosts int }{
		{10_000, 1_000, 1_000, 1},
		{10_000, 512, 128, 20},
	} {
		b.Run(fmt.Sprintf("items=%d/limit=%d/perkey=%d/hosts=%d", tc.items, tc.limit, tc.perKey, tc.hosts), func(b *testing.B) {
			keys := make([]string, tc.items)
			for i := range keys {
				keys[i] = fmt.Sprint("host", i%tc.hosts)
			}
			r := Runner{Limit: tc.limit, PerKey: tc.perKey, Timeout: time.Minute}
			b.ReportAllocs()
			for b.Loop() {
				r.Run(context.Background(), len(keys), func(i int) string { return keys[i] }, func(ctx context.Context, i int) error { return nil })
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tc.items), "ns/item")
		})
	}
}

func TestBound(t *testing.T) {
	t.Parallel()
	type key struct{}
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), key{}, "v"), time.Hour)
	defer cancel()
	tests := []struct {
		name string
		d    time.Duration
		want time.Duration // the deadline's distance from now, about
	}{
		{"shorter than the parent", time.Minute, time.Minute},
		{"capped at the parent's deadline", 2 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		ctx, stop := Bound(parent, tt.d)
		d, ok := ctx.Deadline()
		if left := time.Until(d); !ok || left > tt.want || left < tt.want-time.Minute {
			t.Errorf("%s: deadline in %s, want about %s", tt.name, left, tt.want)
		}
		if ctx.Value(key{}) != "v" {
			t.Errorf("%s: value lost", tt.name)
		}
		stop()
		if ctx.Err() == nil {
			t.Errorf("%s: not ended by its cancel func", tt.name)
		}
	}
	ctx, stop := Bound(parent, time.Minute)
	defer stop()
	cancel()
	if ctx.Err() != nil {
		t.Error("the parent's cancellation reached the bounded context")
	}
}
