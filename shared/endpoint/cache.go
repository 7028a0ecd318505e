package endpoint

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultCacheTTL is how long a Cache keeps what it read: a warm function reads an endpoint at
// most once per DefaultCacheTTL, and a change to an endpoint reaches it within that time.
const DefaultCacheTTL = 30 * time.Second

// Cache is a read-through cache of values kept per endpoint id, for a warm function: a value is
// read with Load at most once per TTL, and concurrent Gets of an id that is not cached share one
// Load (single flight), so a batch of records for one endpoint causes one read. Errors are not
// kept, except those Keep accepts (an endpoint that does not exist), so a failed read is tried
// again by the next Get. Its fields are set once, before the first Get; it is safe for
// concurrent use.
type Cache[V any] struct {
	// Load reads the value of id. It runs on a context of its own that carries the values and
	// deadline of the Get that started it, not its cancellation: a Get that gives up does not
	// fail the others waiting for the same read.
	Load func(ctx context.Context, id string) (V, error)
	// Keep reports whether an error of Load is kept like a value; nil keeps none.
	Keep func(err error) bool
	// TTL is how long a value is kept; 0 means DefaultCacheTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	entries   map[string]*cacheEntry[V]
	lastSweep time.Time
}

// cacheEntry is one id's value, or the read of it in flight: done is closed when val and err are
// set, and they never change after.
type cacheEntry[V any] struct {
	done chan struct{}
	val  V
	err  error
	at   time.Time // when the read began
}

// Get returns the value of id: the kept one when it was read less than TTL ago, else what a
// Load returns (shared with every Get of id that comes while it runs). It returns ctx's error if
// ctx ends first.
func (c *Cache[V]) Get(ctx context.Context, id string) (V, error) {
	now := c.now()
	c.mu.Lock()
	if c.entries == nil {
		c.entries = make(map[string]*cacheEntry[V])
	}
	e := c.entries[id]
	if e == nil || c.stale(e, now) {
		c.sweep(now)
		e = &cacheEntry[V]{done: make(chan struct{}), at: now}
		c.entries[id] = e
		c.mu.Unlock()
		c.load(ctx, id, e)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-e.done:
		return e.val, e.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// load reads id into e and closes e.done; an error that is not kept removes e, so the next Get
// reads again.
func (c *Cache[V]) load(ctx context.Context, id string, e *cacheEntry[V]) {
	lctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadline(lctx, d)
		defer cancel()
	}
	defer close(e.done)
	defer func() {
		if v := recover(); v != nil {
			e.err = fmt.Errorf("read endpoint %s: panic: %v", id, v)
			c.forget(id, e)
			panic(v)
		}
	}()
	e.val, e.err = c.Load(lctx, id)
	if e.err != nil && (c.Keep == nil || !c.Keep(e.err)) {
		c.forget(id, e)
	}
}

// forget removes e, if it is still id's entry.
func (c *Cache[V]) forget(id string, e *cacheEntry[V]) {
	c.mu.Lock()
	if c.entries[id] == e {
		delete(c.entries, id)
	}
	c.mu.Unlock()
}

// stale reports whether e is a finished read older than the TTL. Called with c.mu held.
func (c *Cache[V]) stale(e *cacheEntry[V], now time.Time) bool {
	select {
	case <-e.done:
		return now.Sub(e.at) >= c.ttl() || now.Before(e.at)
	default:
		return false // in flight: share it
	}
}

// sweep drops stale entries, at most once per TTL, so ids met once do not stay in memory.
// Called with c.mu held.
func (c *Cache[V]) sweep(now time.Time) {
	if now.Sub(c.lastSweep) < c.ttl() {
		return
	}
	c.lastSweep = now
	for id, e := range c.entries {
		if c.stale(e, now) {
			delete(c.entries, id)
		}
	}
}

// Len returns how many ids the cache holds, fresh or not yet swept.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Cache[V]) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCacheTTL
}

func (c *Cache[V]) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
