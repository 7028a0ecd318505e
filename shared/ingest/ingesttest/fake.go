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

// Producer is a fake ingest.Producer that counts Send calls and keeps what it queued. An entry
// whose body is not an envelope, or whose envelope Fail picks, is refused (not kept, reported
// failed); one whose envelope Ambiguous picks is kept but reported failed, as SQS does when it
// stores a batch whose answer is lost. Before and After, if set, run at the start of each Send
// and after its entries are kept, with the call's number (1 for the first) and its envelopes, so
// a test can make other requests happen at exactly those points. Set the fields before use.
type Producer struct {
	Fail      func(env message.Envelope) bool
	Ambiguous func(env message.Envelope) bool
	Before    func(call int, envs []message.Envelope)
	After     func(call int, envs []message.Envelope)

	mu        sync.Mutex
	calls     int
	entries   []queue.Entry
	envelopes []message.Envelope
}

var _ ingest.Producer = (*Producer)(nil)

// ErrAmbiguous is the error of an entry the Producer kept but reported failed.
var ErrAmbiguous = errors.New("fake: connection reset after the queue stored the batch")

// Send queues the entries Fail does not pick and returns one error per entry, nil for queued.
// The hooks run without the Producer's lock held, so they may call Send themselves.
func (p *Producer) Send(_ context.Context, entries []queue.Entry) []error {
	p.mu.Lock()
	p.calls++
	call := p.calls
	p.mu.Unlock()
	errs := make([]error, len(entries))
	envs := make([]message.Envelope, len(entries))
	for i, e := range entries {
		if err := json.Unmarshal([]byte(e.Body), &envs[i]); err != nil {
			errs[i] = fmt.Errorf("fake: entry %d is not an envelope: %w", i, err)
		}
	}
	if p.Before != nil {
		p.Before(call, envs)
	}
	p.mu.Lock()
	for i, e := range entries {
		switch {
		case errs[i] != nil:
		case p.Fail != nil && p.Fail(envs[i]):
			errs[i] = &queue.Error{Message: "fake: queue unreachable"}
		default:
			p.entries = append(p.entries, e)
			p.envelopes = append(p.envelopes, envs[i])
			if p.Ambiguous != nil && p.Ambiguous(envs[i]) {
				errs[i] = &queue.Error{Err: ErrAmbiguous}
			}
		}
	}
	p.mu.Unlock()
	if p.After != nil {
		p.After(call, envs)
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
