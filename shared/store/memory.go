package store

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

var _ Store = (*Memory)(nil)

// Memory is an in-process Store with the same conditional semantics as DynamoDB, for unit tests
// and benchmarks. Its zero value is ready to use with DefaultTTL; it is safe for concurrent use.
type Memory struct {
	// TTL is the record TTL; zero means DefaultTTL.
	TTL time.Duration

	// Records are spread over shards by id, each with its own lock, so thousands of concurrent
	// deliveries do not queue on one mutex (seen in the deliver benchmark's profile).
	shards        [memoryShards]memoryShard
	writes, reads atomic.Int64
}

const memoryShards = 64

type memoryShard struct {
	mu      sync.Mutex
	records map[string]message.Record
	_       [48]byte // keeps neighbouring shards' locks off one cache line
}

var shardSeed = maphash.MakeSeed()

// lock returns id's shard, locked, and counts the call in n; when ctx is done it returns ctx's
// error instead, having counted and locked nothing, so every method fails the same way.
func (m *Memory) lock(ctx context.Context, n *atomic.Int64, id string) (*memoryShard, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.Add(1)
	s := &m.shards[maphash.String(shardSeed, id)%memoryShards]
	s.mu.Lock()
	return s, nil
}

// ttl returns the record TTL in force.
func (m *Memory) ttl() time.Duration {
	if m.TTL <= 0 {
		return DefaultTTL
	}
	return m.TTL
}

// Counts returns how many writes and reads the store has served, for tests that count calls.
func (m *Memory) Counts() (writes, reads int) {
	return int(m.writes.Load()), int(m.reads.Load())
}

func (m *Memory) put(s *memoryShard, rec message.Record) {
	if s.records == nil {
		s.records = make(map[string]message.Record)
	}
	rec.TTL = ttlAt(createTime(rec), m.ttl())
	s.records[rec.ID] = clone(rec)
}

// Create implements Store.
func (m *Memory) Create(ctx context.Context, rec message.Record) error {
	s, err := m.lock(ctx, &m.writes, rec.ID)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if old, ok := s.records[rec.ID]; ok {
		if rec.CreateToken != "" && old.CreateToken == rec.CreateToken {
			return nil
		}
		return &ConflictError{Err: ErrExists, Record: clone(old)}
	}
	rec.Status = message.Accepted
	m.put(s, rec)
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (message.Record, error) {
	s, err := m.lock(ctx, &m.reads, id)
	if err != nil {
		return message.Record{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok {
		return message.Record{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	return clone(r), nil
}

// Claim implements Store.
func (m *Memory) Claim(ctx context.Context, id string, c Claim) (message.Record, error) {
	s, err := m.lock(ctx, &m.writes, id)
	if err != nil {
		return message.Record{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.records[id]
	switch {
	case !ok && c.New != nil:
		r = newRecord(id, *c.New)
	case !ok:
		return message.Record{}, fmt.Errorf("claim %s: %w", id, ErrNotFound)
	}
	rec := r
	switch {
	case rec.Status == message.Delivering && rec.LeaseToken == c.Token:
		return clone(rec), nil // this claim, applied before
	case rec.Status.Final() && !deadLettered(rec):
		return message.Record{}, &ConflictError{Err: ErrFinal, Record: clone(rec)}
	case c.Fingerprint != "" && rec.Fingerprint != c.Fingerprint:
		return message.Record{}, &ConflictError{Err: ErrStale, Record: clone(rec)}
	case rec.Status == message.Delivering && !rec.LeaseUntil.Before(c.Now):
		return message.Record{}, &ConflictError{Err: ErrLeased, Record: clone(rec)}
	}
	rec.Status = message.Delivering
	rec.Attempts++
	rec.LeaseToken = c.Token
	rec.LeaseUntil = c.Now.Add(c.Lease)
	rec.UpdatedAt = c.Now
	m.put(s, rec)
	return clone(s.records[id]), nil
}

// Finish implements Store.
func (m *Memory) Finish(ctx context.Context, id string, o Outcome) (message.Record, error) {
	s, err := m.lock(ctx, &m.writes, id)
	if err != nil {
		return message.Record{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.records[id]
	switch {
	case !ok && o.Token == "" && o.New != nil:
		r = newRecord(id, *o.New)
	case !ok:
		return message.Record{}, fmt.Errorf("finish %s: %w", id, ErrNotFound)
	}
	rec := r
	switch {
	case o.Token != "" && rec.FinishedBy == o.Token:
		return clone(rec), nil // this finish, applied before
	case o.Token != "" && (rec.Status != message.Delivering || rec.LeaseToken != o.Token):
		return message.Record{}, &ConflictError{Err: ErrLeaseLost, Record: clone(rec)}
	case o.Token == "" && rec.Status.Final():
		return message.Record{}, &ConflictError{Err: ErrFinal, Record: clone(rec)}
	case o.Token == "" && o.Fingerprint != "" && rec.Fingerprint != o.Fingerprint:
		return message.Record{}, &ConflictError{Err: ErrStale, Record: clone(rec)}
	case o.Token == "" && rec.Status == message.Delivering && !rec.LeaseUntil.Before(o.Now):
		return message.Record{}, &ConflictError{Err: ErrLeased, Record: clone(rec)}
	}
	rec.Status = o.Status
	if o.Token != "" {
		rec.FinishedBy = o.Token
	}
	rec.LeaseToken = ""
	rec.LeaseUntil = time.Time{}
	rec.UpdatedAt = o.Now
	if o.Attempt != nil {
		a := *o.Attempt
		rec.LastAttempt = &a
	}
	switch {
	case o.Status == message.Delivered:
		rec.DeliveredAt = o.Now
		rec.Copy = nil
	case keepsCopy(o):
		rec.Copy = nil
		if _, ok := compressCopy(o.Keep); ok {
			rec.Copy = o.Keep
		}
	}
	if p := o.Fanout; p != nil && o.Token != "" {
		rec.FanoutCursor, rec.FanoutDeliveries, rec.Matched = p.Cursor, p.Deliveries, p.Matched
	}
	m.put(s, rec)
	return clone(s.records[id]), nil
}

// newRecord is the record a first claim or finish makes from n (see Claim.New), before the
// write's own changes.
func newRecord(id string, n message.Record) message.Record {
	return message.Record{ID: id, MessageID: n.MessageID, EndpointID: n.EndpointID, Fingerprint: n.Fingerprint,
		TargetHost: n.TargetHost, CreatedAt: n.CreatedAt, ExpiresAt: n.ExpiresAt}
}

// Checkpoint implements Store.
func (m *Memory) Checkpoint(ctx context.Context, id string, p Progress) (message.Record, error) {
	s, err := m.lock(ctx, &m.writes, id)
	if err != nil {
		return message.Record{}, err
	}
	defer s.mu.Unlock()
	rec, ok := s.records[id]
	switch {
	case !ok:
		return message.Record{}, fmt.Errorf("checkpoint %s: %w", id, ErrNotFound)
	case rec.Status != message.Delivering || rec.LeaseToken != p.Token || (p.Release && rec.LeaseUntil.Before(p.Now)):
		if checkpointed(rec, p) {
			return clone(rec), nil
		}
		return message.Record{}, &ConflictError{Err: ErrLeaseLost, Record: clone(rec)}
	}
	rec.FanoutCursor, rec.FanoutDeliveries, rec.Matched = p.Cursor, p.Deliveries, p.Matched
	rec.UpdatedAt = p.Now
	if p.Release {
		rec.LeaseUntil = p.Now.Add(-time.Millisecond)
		rec.Attempts--
	}
	m.put(s, rec)
	return clone(s.records[id]), nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, id, createToken string) error {
	s, err := m.lock(ctx, &m.writes, id)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	r, ok := s.records[id]
	switch {
	case !ok || r.CreateToken != createToken:
		return nil
	case r.Status != message.Accepted:
		return &ConflictError{Err: ErrNotAccepted, Record: clone(r)}
	case r.Replayed:
		return &ConflictError{Err: ErrReplayed, Record: clone(r)}
	}
	delete(s.records, id)
	return nil
}

// MarkReplayed implements Store.
func (m *Memory) MarkReplayed(ctx context.Context, id, createToken string, now time.Time) (message.Record, error) {
	s, err := m.lock(ctx, &m.writes, id)
	if err != nil {
		return message.Record{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.records[id]
	switch {
	case !ok:
		return message.Record{}, fmt.Errorf("mark %s replayed: %w", id, ErrNotFound)
	case r.CreateToken != createToken:
		return message.Record{}, &ConflictError{Err: ErrReplaced, Record: clone(r)}
	}
	r.Replayed = true
	r.TTL = ttlAt(now, m.ttl())
	s.records[id] = clone(r)
	return clone(r), nil
}

// Reopen implements Store.
func (m *Memory) Reopen(ctx context.Context, id string, r Reopen) (message.Record, error) {
	s, err := m.lock(ctx, &m.writes, id)
	if err != nil {
		return message.Record{}, err
	}
	defer s.mu.Unlock()
	rec, ok := s.records[id]
	if !ok {
		return message.Record{}, fmt.Errorf("reopen %s: %w", id, ErrNotFound)
	}
	if err := reopenReason(rec); err != nil {
		return message.Record{}, &ConflictError{Err: err, Record: clone(rec)}
	}
	if rec.Status == message.Accepted {
		return clone(rec), nil // reopened before, not claimed since
	}
	rec.History = appendHistory(rec.History, rec.LastAttempt)
	rec.Status = message.Accepted
	rec.Attempts = 0
	rec.LastAttempt = nil
	rec.LeaseToken, rec.LeaseUntil, rec.FinishedBy = "", time.Time{}, ""
	rec.ReopenToken, rec.ReopenedAt = r.Token, r.Now
	rec.UpdatedAt = r.Now
	m.put(s, rec)
	return clone(s.records[id]), nil
}

// appendHistory is h with a appended (when there is one), the oldest dropped past
// message.MaxHistory; h itself is left as it is.
func appendHistory(h []message.Attempt, a *message.Attempt) []message.Attempt {
	out := slices.Clone(h)
	if a != nil {
		out = append(out, *a)
	}
	if n := len(out) - message.MaxHistory; n > 0 {
		out = out[n:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// clone copies rec so callers never share its pointers with the store.
func clone(rec message.Record) message.Record {
	rec.Copy = bytes.Clone(rec.Copy)
	rec.History = slices.Clone(rec.History)
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
