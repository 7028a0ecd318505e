package lambdarun

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Pool runs up to size processes of one function, so that many invokes run at once while each
// process serves one at a time, as Lambda scales execution environments. Processes start on
// demand and are reused while they live.
type Pool struct {
	idle chan *Function
	all  []*Function

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

// NewPool returns a Pool of size processes (at least 1) of the function cfg describes.
func NewPool(cfg Config, size int) *Pool {
	size = max(size, 1)
	cfg = cfg.withDefaults()
	cfg.Output = syncWriter(cfg.Output)
	p := &Pool{idle: make(chan *Function, size), done: make(chan struct{})}
	for range size {
		f := NewFunction(cfg)
		p.all = append(p.all, f)
		p.idle <- f
	}
	return p
}

// Invoke waits for a free process, or for ctx, and invokes it as Function.Invoke does.
func (p *Pool) Invoke(ctx context.Context, payload []byte) ([]byte, *FunctionError, error) {
	select {
	case f := <-p.idle:
		defer func() { p.idle <- f }()
		return f.Invoke(ctx, payload)
	case <-p.done:
		return nil, nil, ErrClosed
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("invoke: waiting for a free process: %w", context.Cause(ctx))
	}
}

// Size returns the number of processes the Pool may run.
func (p *Pool) Size() int { return len(p.all) }

// Close kills every process of the Pool; invokes in flight end with an error.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	var errs []error
	for _, f := range p.all {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
