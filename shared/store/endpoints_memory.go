package store

import (
	"context"
	"fmt"
	"sort"
	"sync"

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
