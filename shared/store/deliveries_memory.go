package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/pushfn/pushfn/shared/message"
)

var _ Deliveries = (*Memory)(nil)

// ListDeliveries implements Deliveries over every record the store holds; it counts as one read.
// Unlike DynamoDB it has no read bound, so a page filtered by status is always full when more
// deliveries match.
func (m *Memory) ListDeliveries(ctx context.Context, q DeliveryQuery) (DeliveryPage, error) {
	op := "list deliveries of " + q.EndpointID
	if err := ctx.Err(); err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	after, err := decodeDeliveryCursor(q)
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	m.reads.Add(1)
	lo, hi := q.bounds()
	type keyed struct {
		sk  string
		rec message.Record
	}
	var found []keyed
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, rec := range s.records {
			if rec.EndpointID == "" || rec.EndpointID != q.EndpointID {
				continue
			}
			_, sk, _ := deliveryKeys(rec)
			if (lo != "" && sk < lo) || (hi != "" && sk > hi) || (after != "" && sk >= after) ||
				(q.Status != "" && rec.Status != q.Status) {
				continue
			}
			found = append(found, keyed{sk, clone(rec)})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(found, func(a, b keyed) int { return cmp.Compare(b.sk, a.sk) })
	limit := q.limit()
	var page DeliveryPage
	for i, k := range found {
		if i == limit {
			page.Next = encodeDeliveryCursor(q, found[limit-1].sk)
			break
		}
		page.Records = append(page.Records, k.rec)
	}
	return page, nil
}
