package store_test

import (
	"testing"

	"github.com/pushfn/pushfn/shared/store"
	"github.com/pushfn/pushfn/shared/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) store.Store { return &store.Memory{TTL: storetest.TTL} })
}

func TestMemoryDeliveriesConformance(t *testing.T) {
	t.Parallel()
	storetest.RunDeliveries(t, func(*testing.T) storetest.DeliveryStore { return &store.Memory{TTL: storetest.TTL} })
}
