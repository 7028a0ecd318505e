package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/ratelimit"
	"github.com/pushfn/pushfn/shared/store"
)

// A Limiter hands out an endpoint's slots from blocks it reserves in the shared numbering: at
// 5 per second, the first ten slots (two seconds' worth) cost one reservation. In the deliver
// function the reserver is store.NewDynamoDBSlots(client, table).
func ExampleLimiter_Take() {
	slots := &store.MemorySlots{}
	l := ratelimit.New(slots)
	now := time.Date(2026, 12, 2, 12, 0, 0, 100_000_000, time.UTC)
	for range 7 {
		s, err := l.Take(context.Background(), "ep_06h3230102tq4gpdzyxsvjwpec", 5, now)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(s.Start().UTC().Format("15:04:05.000"), "until", s.End().UTC().Format("15:04:05.000"))
	}
	fmt.Println(slots.Writes(), "reservation")
	// Output:
	// 12:00:00.000 until 12:00:00.700
	// 12:00:00.100 until 12:00:00.700
	// 12:00:00.200 until 12:00:00.700
	// 12:00:00.300 until 12:00:00.700
	// 12:00:00.400 until 12:00:00.700
	// 12:00:01.000 until 12:00:01.700
	// 12:00:01.100 until 12:00:01.700
	// 1 reservation
}
