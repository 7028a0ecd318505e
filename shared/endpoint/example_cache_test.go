package endpoint_test

import (
	"context"
	"fmt"

	"github.com/pushfn/pushfn/shared/endpoint"
)

// A Cache reads each endpoint once per TTL, however many messages go to it.
func ExampleCache() {
	reads := 0
	cache := &endpoint.Cache[string]{
		Load: func(_ context.Context, id string) (string, error) {
			reads++
			return "https://hooks.example.com/" + id, nil
		},
	}
	for range 3 {
		url, _ := cache.Get(context.Background(), "ep_06h3230102tq4gpdzyxsvjwpec")
		fmt.Println(url)
	}
	fmt.Println("reads:", reads)
	// Output:
	// https://hooks.example.com/ep_06h3230102tq4gpdzyxsvjwpec
	// https://hooks.example.com/ep_06h3230102tq4gpdzyxsvjwpec
	// https://hooks.example.com/ep_06h3230102tq4gpdzyxsvjwpec
	// reads: 1
}
