package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
)

var _ Endpoints = (*MemoryEndpoints)(nil)

// MemoryEndpoints is an in-process endpoint store with the same conditional semantics as the
// DynamoDB one, for unit tests. Its zero value is ready to use; it is safe for concurrent use.
type MemoryEndpoints struct {
	mu        sync.Mutex
	endpoints map[string]endpoint.Record
}

func (m *MemoryEndpoints) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.endpoints == nil {
		m.endpoints = map[string]endpoint.Record{}
	}
	return nil
}

// CreateEndpoint implements Endpoints.
func (m *MemoryEndpoints) CreateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error) {
	if err := m.lock(ctx); err != nil {
		return endpoint.Record{}, fmt.Errorf("create endpoint %s: %w", rec.ID, err)
	}
	defer m.mu.Unlock()
	if _, ok := m.endpoints[rec.ID]; ok {
		return endpoint.Record{}, fmt.Errorf("create endpoint %s: %w", rec.ID, ErrEndpointExists)
	}
	rec.Version, rec.WriteToken = 1, newWriteToken()
	m.endpoints[rec.ID] = rec.Clone()
	return rec.Clone(), nil
}

// GetEndpoint implements Endpoints.
func (m *MemoryEndpoints) GetEndpoint(ctx context.Context, id string) (endpoint.Record, error) {
	if err := m.lock(ctx); err != nil {
		return endpoint.Record{}, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	defer m.mu.Unlock()
	rec, ok := m.endpoints[id]
	if !ok {
		return endpoint.Record{}, fmt.Errorf("get endpoint %s: %w", id, ErrEndpointNotFound)
	}
	return rec.Clone(), nil
}

// UpdateEndpoint implements Endpoints.
func (m *MemoryEndpoints) UpdateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error) {
	if err := m.lock(ctx); err != nil {
		return endpoint.Record{}, fmt.Errorf("update endpoint %s: %w", rec.ID, err)
	}
	defer m.mu.Unlock()
	old, ok := m.endpoints[rec.ID]
	switch {
	case !ok:
		return endpoint.Record{}, fmt.Errorf("update endpoint %s: %w", rec.ID, ErrEndpointNotFound)
	case old.Version != rec.Version:
		return endpoint.Record{}, fmt.Errorf("update endpoint %s at version %d (stored %d): %w", rec.ID, rec.Version, old.Version, ErrVersion)
	}
	rec.Version, rec.WriteToken = rec.Version+1, newWriteToken()
	m.endpoints[rec.ID] = rec.Clone()
	return rec.Clone(), nil
}

// DeleteEndpoint implements Endpoints.
func (m *MemoryEndpoints) DeleteEndpoint(ctx context.Context, id string, version int) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	defer m.mu.Unlock()
	old, ok := m.endpoints[id]
	switch {
	case !ok:
		return nil
	case old.Version != version:
		return fmt.Errorf("delete endpoint %s at version %d (stored %d): %w", id, version, old.Version, ErrVersion)
	}
	delete(m.endpoints, id)
	return nil
}

// ListEndpoints implements Endpoints.
func (m *MemoryEndpoints) ListEndpoints(ctx context.Context, q EndpointQuery) (EndpointPage, error) {
	_, pk := q.partition()
	after, err := decodeCursor(q.Cursor, pk)
	if err != nil {
		return EndpointPage{}, fmt.Errorf("list endpoints: %w", err)
	}
	if err := m.lock(ctx); err != nil {
		return EndpointPage{}, fmt.Errorf("list endpoints: %w", err)
	}
	defer m.mu.Unlock()
	var ids []string
	for id, rec := range m.endpoints {
		if id > after && (q.TenantID == nil || rec.TenantID == *q.TenantID) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var page EndpointPage
	limit := q.limit()
	if len(ids) > limit {
		ids = ids[:limit]
		page.Next = encodeCursor(pk, ids[limit-1])
	}
	for _, id := range ids {
		page.Endpoints = append(page.Endpoints, m.endpoints[id].Clone())
	}
	return page, nil
}

// MarkEndpointFailing implements Endpoints.
func (m *MemoryEndpoints) MarkEndpointFailing(ctx context.Context, id string, since time.Time) (endpoint.Record, bool, error) {
	return m.health(ctx, "mark endpoint failing", id, func(rec *endpoint.Record) bool {
		if rec.FailingSince != nil {
			return false
		}
		rec.FailingSince = &since
		return true
	})
}

// MarkEndpointHealthy implements Endpoints.
func (m *MemoryEndpoints) MarkEndpointHealthy(ctx context.Context, id string) (endpoint.Record, bool, error) {
	return m.health(ctx, "mark endpoint healthy", id, func(rec *endpoint.Record) bool {
		if rec.FailingSince == nil {
			return false
		}
		rec.FailingSince = nil
		return true
	})
}

// DisableFailingEndpoint implements Endpoints.
func (m *MemoryEndpoints) DisableFailingEndpoint(ctx context.Context, id string, failingSince, at time.Time) (endpoint.Record, bool, error) {
	return m.health(ctx, "disable failing endpoint", id, func(rec *endpoint.Record) bool {
		if rec.Disabled || rec.FailingSince == nil || !rec.FailingSince.Equal(failingSince) {
			return false
		}
		rec.Disabled, rec.DisabledReason, rec.DisabledAt, rec.UpdatedAt = true, endpoint.ReasonFailing, &at, at
		return true
	})
}

// health applies change to the stored endpoint id when change reports it applies, raising its
// version.
func (m *MemoryEndpoints) health(ctx context.Context, op, id string, change func(rec *endpoint.Record) bool) (endpoint.Record, bool, error) {
	if err := m.lock(ctx); err != nil {
		return endpoint.Record{}, false, fmt.Errorf("%s %s: %w", op, id, err)
	}
	defer m.mu.Unlock()
	old, ok := m.endpoints[id]
	if !ok {
		return endpoint.Record{}, false, fmt.Errorf("%s %s: %w", op, id, ErrEndpointNotFound)
	}
	rec := old.Clone()
	if !change(&rec) {
		return old.Clone(), false, nil
	}
	rec.Version, rec.WriteToken = rec.Version+1, newWriteToken()
	m.endpoints[id] = rec.Clone()
	return rec, true, nil
}
