package store_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// A delivery's life in a store: accept, claim, record the result; a duplicate claim is refused.
func ExampleStore() {
	ctx := context.Background()
	var s store.Store = &store.Memory{} // store.NewDynamoDB(client, table, ttl) in a function
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	id := message.IDForKey("order-42-shipped")

	if err := s.Create(ctx, message.Record{ID: id, TargetHost: "hooks.example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		fmt.Println(err)
	}
	rec, _ := s.Claim(ctx, id, store.Claim{Now: now, Lease: 15 * time.Second, Token: "worker-1"})
	fmt.Println(rec.Status, rec.Attempts)
	rec, _ = s.Finish(ctx, id, store.Outcome{Now: now.Add(time.Second), Status: message.Delivered, Token: "worker-1",
		Attempt: &message.Attempt{At: now, StatusCode: 200, DurationMS: 800}})
	fmt.Println(rec.Status, rec.DeliveredAt.Format(time.RFC3339))

	_, err := s.Claim(ctx, id, store.Claim{Now: now.Add(time.Minute), Lease: 15 * time.Second, Token: "worker-2"})
	fmt.Println(errors.Is(err, store.ErrFinal))
	// Output:
	// delivering 1
	// delivered 2026-11-24T10:00:01Z
	// true
}
