package store

import (
	"context"
	"fmt"
	"sync"
)

var _ Slots = (*MemorySlots)(nil)

// MemorySlots is an in-process Slots with the same semantics as DynamoDBSlots, for unit tests.
// Its zero value is ready to use; it is safe for concurrent use.
type MemorySlots struct {
	mu     sync.Mutex
	counts map[string]slotCounter
	writes int64
}

type slotCounter struct {
	next int64
	rate int
}

// ReserveSlots implements Slots.
func (m *MemorySlots) ReserveSlots(ctx context.Context, endpointID string, rate int, nowSlot int64, k int) (int64, error) {
	if err := checkSlotArgs(endpointID, rate, nowSlot, k); err != nil {
		return 0, fmt.Errorf("reserve slots of %s: %w", endpointID, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("reserve slots of %s: %w", endpointID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]slotCounter{}
	}
	c := m.counts[endpointID]
	first := c.next
	if c.rate != rate || c.next < nowSlot {
		first = restart(c.next, c.rate, rate, nowSlot)
	}
	m.counts[endpointID] = slotCounter{next: first + int64(k), rate: rate}
	m.writes++
	return first, nil
}

// Writes returns how many reservations were written: the writes DynamoDBSlots would have made
// had none of its conditions failed.
func (m *MemorySlots) Writes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}
