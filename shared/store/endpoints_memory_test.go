package store_test

import (
	"testing"

	"github.com/pushfn/pushfn/shared/store"
	"github.com/pushfn/pushfn/shared/store/storetest"
)

func TestMemoryEndpointsConformance(t *testing.T) {
	t.Parallel()
	storetest.RunEndpoints(t, func(*testing.T) store.Endpoints { return &store.MemoryEndpoints{} })
}
