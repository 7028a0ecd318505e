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
			_, sk, ok := deliveryKeys(rec)
			if !ok || rec.EndpointID != q.EndpointID {
				continue
			}
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

// ListMessageDeliveries implements Deliveries; it counts as one read.
func (m *Memory) ListMessageDeliveries(ctx context.Context, q MessageDeliveryQuery) (DeliveryPage, error) {
	op := "list deliveries of " + q.MessageID
	if err := ctx.Err(); err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	pk := messageDeliveriesPrefix + q.MessageID
	after, err := decodeCursor(q.Cursor, pk)
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	m.reads.Add(1)
	found := m.deliveriesOf(q.MessageID)
	slices.SortFunc(found, func(a, b message.Record) int { return cmp.Compare(a.EndpointID, b.EndpointID) })
	limit := EndpointQuery{Limit: q.Limit}.limit()
	var page DeliveryPage
	for _, rec := range found {
		if rec.EndpointID <= after {
			continue
		}
		if len(page.Records) == limit {
			page.Next = encodeCursor(pk, page.Records[limit-1].EndpointID)
			break
		}
		page.Records = append(page.Records, rec)
	}
	return page, nil
}

// CountDeliveries implements Deliveries; it counts as one read.
func (m *Memory) CountDeliveries(ctx context.Context, messageID string) (map[message.Status]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("count deliveries of %s: %w", messageID, err)
	}
	m.reads.Add(1)
	counts := map[message.Status]int{}
	for _, rec := range m.deliveriesOf(messageID) {
		counts[rec.Status]++
	}
	return counts, nil
}

// deliveriesOf returns copies of the delivery records of message id.
func (m *Memory) deliveriesOf(id string) []message.Record {
	var found []message.Record
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, rec := range s.records {
			if rec.MessageID == id {
				found = append(found, clone(rec))
			}
		}
		s.mu.Unlock()
	}
	return found
}
