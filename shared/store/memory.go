package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

var _ Store = (*Memory)(nil)

// Memory is an in-process Store with the same conditional semantics as DynamoDB, for unit tests
// and benchmarks. Its zero value is ready to use with DefaultTTL; it is safe for concurrent use.
type Memory struct {
	// TTL is the record TTL; zero means DefaultTTL.
	TTL time.Duration

	mu      sync.Mutex
	records map[string]message.Record
	writes  int
	reads   int
}

// Counts returns how many writes and reads the store has served, for tests that count calls.
func (m *Memory) Counts() (writes, reads int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes, m.reads
}

func (m *Memory) put(rec message.Record) {
	if m.records == nil {
		m.records = make(map[string]message.Record)
	}
	ttl := m.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	rec.TTL = ttlAt(createTime(rec), ttl)
	m.records[rec.ID] = clone(rec)
}

// Create implements Store.
func (m *Memory) Create(ctx context.Context, rec message.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if old, ok := m.records[rec.ID]; ok {
		return &ConflictError{Err: ErrExists, Record: clone(old)}
	}
	rec.Status = message.Accepted
	m.put(rec)
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	r, ok := m.records[id]
	if !ok {
		return message.Record{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	return clone(r), nil
}

// Claim implements Store.
func (m *Memory) Claim(ctx context.Context, id string, c Claim) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	r, ok := m.records[id]
	if !ok {
		return message.Record{}, fmt.Errorf("claim %s: %w", id, ErrNotFound)
	}
	rec := r
	switch {
	case rec.Status.Final():
		return message.Record{}, &ConflictError{Err: ErrFinal, Record: clone(rec)}
	case rec.Status == message.Delivering && !rec.LeaseUntil.Before(c.Now):
		return message.Record{}, &ConflictError{Err: ErrLeased, Record: clone(rec)}
	}
	rec.Status = message.Delivering
	rec.Attempts++
	rec.LeaseToken = c.Token
	rec.LeaseUntil = c.Now.Add(c.Lease)
	rec.UpdatedAt = c.Now
	m.put(rec)
	return clone(m.records[id]), nil
}

// Finish implements Store.
func (m *Memory) Finish(ctx context.Context, id string, o Outcome) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	r, ok := m.records[id]
	if !ok {
		return message.Record{}, fmt.Errorf("finish %s: %w", id, ErrNotFound)
	}
	rec := r
	switch {
	case o.Token != "" && (rec.Status != message.Delivering || rec.LeaseToken != o.Token):
		return message.Record{}, &ConflictError{Err: ErrLeaseLost, Record: clone(rec)}
	case o.Token == "" && rec.Status.Final():
		return message.Record{}, &ConflictError{Err: ErrFinal, Record: clone(rec)}
	}
	rec.Status = o.Status
	rec.LeaseToken = ""
	rec.LeaseUntil = time.Time{}
	rec.UpdatedAt = o.Now
	if o.Attempt != nil {
		a := *o.Attempt
		rec.LastAttempt = &a
	}
	if o.Status == message.Delivered {
		rec.DeliveredAt = o.Now
	}
	m.put(rec)
	return clone(m.records[id]), nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	r, ok := m.records[id]
	if !ok {
		return nil
	}
	if r.Status != message.Accepted {
		return &ConflictError{Err: ErrNotAccepted, Record: clone(r)}
	}
	delete(m.records, id)
	return nil
}

// clone copies rec so callers never share its pointers with the store.
func clone(rec message.Record) message.Record {
	if rec.LastAttempt != nil {
		a := *rec.LastAttempt
		rec.LastAttempt = &a
	}
	if rec.ExpiresAt != nil {
		t := *rec.ExpiresAt
		rec.ExpiresAt = &t
	}
	return rec
}
