// Package runner runs a function over a batch of items concurrently, bounded in total and per key
// (a target host), so one slow key cannot take every slot and one failure cancels nothing.
package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// ErrNotStarted is the result of an item the runner did not start: the context ended, or its
// deadline minus the margin could no longer fit the item's timeout.
var ErrNotStarted = errors.New("item not started")

// PanicError is the result of an item whose function panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("item panicked: %v", e.Value) }

// Runner holds the limits of a run. The zero value runs every item at once with no timeout.
type Runner struct {
	// Limit bounds the items running at once; 0 means no bound.
	Limit int
	// PerKey bounds the items with the same key running at once; 0 means no bound.
	PerKey int
	// Timeout bounds each item (its context's deadline); 0 means none. An item starts only if
	// the run's deadline, less Margin, is at least Timeout away.
	Timeout time.Duration
	// Margin is kept free before the run's deadline, for whatever follows the run.
	Margin time.Duration
}

// Run calls fn(ctx, i) for each item i of keys (keys[i] is the item's key) and returns one result
// per item: what fn returned, a *PanicError, or ErrNotStarted. Items of a key start in order;
// keys take turns. Run returns when every started item has returned.
func (r Runner) Run(ctx context.Context, keys []string, fn func(ctx context.Context, i int) error) []error {
	n := len(keys)
	results := make([]error, n)
	if n == 0 {
		return results
	}
	workers := n
	if r.Limit > 0 && r.Limit < n {
		workers = r.Limit
	}
	s := newSched(keys, r.PerKey)
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for {
				i, ok := s.next(func() bool { return r.fits(ctx) })
				if !ok {
					return
				}
				results[i] = r.run(ctx, i, fn)
				s.done(i)
			}
		}()
	}
	wg.Wait()
	for i, started := range s.started {
		if !started {
			results[i] = ErrNotStarted
		}
	}
	return results
}

// fits reports whether another item may start now.
func (r Runner) fits(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline)-r.Margin >= r.Timeout
}

func (r Runner) run(ctx context.Context, i int, fn func(context.Context, int) error) (err error) {
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn(ctx, i)
}

// sched hands out items: per key a FIFO of item indexes, and a ring of the keys that have items
// waiting and a free slot.
type sched struct {
	mu      sync.Mutex
	cond    sync.Cond
	perKey  int
	keyOf   []int   // item -> key number
	queues  [][]int // key number -> waiting items
	running []int   // key number -> items running
	ready   []int   // key numbers with waiting items and a free slot, in turn order
	inReady []bool
	waiting int // items not yet started
	stopped bool
	started []bool
}

func newSched(keys []string, perKey int) *sched {
	s := &sched{perKey: perKey, keyOf: make([]int, len(keys)), started: make([]bool, len(keys)), waiting: len(keys)}
	s.cond.L = &s.mu
	number := make(map[string]int)
	for i, k := range keys {
		kn, ok := number[k]
		if !ok {
			kn = len(s.queues)
			number[k] = kn
			s.queues = append(s.queues, nil)
			s.ready = append(s.ready, kn)
		}
		s.keyOf[i] = kn
		s.queues[kn] = append(s.queues[kn], i)
	}
	s.running = make([]int, len(s.queues))
	s.inReady = make([]bool, len(s.queues))
	for i := range s.inReady {
		s.inReady[i] = true
	}
	return s
}

// next returns the next item to run, waiting while every key with items is at its limit; false
// when nothing is left to start or may start (fits is asked under the lock, before each start).
func (s *sched) next(fits func() bool) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ready) == 0 && s.waiting > 0 && !s.stopped {
		s.cond.Wait()
	}
	if s.waiting == 0 || s.stopped {
		return 0, false
	}
	if !fits() {
		s.stopped = true
		s.cond.Broadcast()
		return 0, false
	}
	kn := s.ready[0]
	q := s.queues[kn]
	i := q[0]
	s.queues[kn] = q[1:]
	s.running[kn]++
	s.waiting--
	s.started[i] = true
	if len(s.queues[kn]) == 0 || (s.perKey > 0 && s.running[kn] >= s.perKey) {
		s.ready = s.ready[1:]
		s.inReady[kn] = false
	} else if len(s.ready) > 1 {
		// Let the next key take a turn.
		s.ready = append(s.ready[1:], kn)
	}
	if s.waiting == 0 {
		s.cond.Broadcast()
	}
	return i, true
}

// done records the end of item i, freeing its key's slot.
func (s *sched) done(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kn := s.keyOf[i]
	s.running[kn]--
	if !s.inReady[kn] && len(s.queues[kn]) > 0 {
		s.ready = append(s.ready, kn)
		s.inReady[kn] = true
		s.cond.Signal()
	}
}
