package store_test

import (
	"testing"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/store"
	"github.com/pushfn/pushfn/shared/store/storetest"
)

func TestMemorySlotsConformance(t *testing.T) {
	t.Parallel()
	storetest.RunSlots(t, func(*testing.T) store.Slots { return &store.MemorySlots{} })
}

func TestIntegrationDynamoDBSlotsConformance(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.Table(t, client)
	storetest.RunSlots(t, func(*testing.T) store.Slots { return store.NewDynamoDBSlots(client, table) })
}
