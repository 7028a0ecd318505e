package ingesttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
)

// Clock is a settable time source, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads now until it is advanced.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// Producer is a fake ingest.Producer that counts Send calls and keeps what it queued; an entry
// whose body is not an envelope, or whose envelope Fail (if set) picks, is refused.
type Producer struct {
	Fail func(env message.Envelope) bool

	mu        sync.Mutex
	calls     int
	entries   []queue.Entry
	envelopes []message.Envelope
}

var _ ingest.Producer = (*Producer)(nil)

// Send queues the entries Fail does not pick and returns one error per entry, nil for queued.
func (p *Producer) Send(_ context.Context, entries []queue.Entry) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	errs := make([]error, len(entries))
	for i, e := range entries {
		var env message.Envelope
		if err := json.Unmarshal([]byte(e.Body), &env); err != nil {
			errs[i] = fmt.Errorf("fake: entry %d is not an envelope: %w", i, err)
			continue
		}
		if p.Fail != nil && p.Fail(env) {
			errs[i] = errors.New("fake: queue unreachable")
			continue
		}
		p.entries = append(p.entries, e)
		p.envelopes = append(p.envelopes, env)
	}
	return errs
}

// Calls returns how many times Send was called.
func (p *Producer) Calls() int { p.mu.Lock(); defer p.mu.Unlock(); return p.calls }

// Entries returns the entries queued so far, in order.
func (p *Producer) Entries() []queue.Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]queue.Entry(nil), p.entries...)
}

// Envelopes returns the envelopes of the entries queued so far, in order.
func (p *Producer) Envelopes() []message.Envelope {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]message.Envelope(nil), p.envelopes...)
}
