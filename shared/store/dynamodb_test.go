package store_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pushfn/pushfn/shared/awstest"
	"github.com/pushfn/pushfn/shared/store"
	"github.com/pushfn/pushfn/shared/store/storetest"
)

func TestIntegrationDynamoDBConformance(t *testing.T) {
	t.Parallel()
	// DynamoDB Local's CRC32 header does not match some of its error bodies; the SDK would log a
	// warning for each.
	client := dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	table := awstest.Name(t)
	if err := store.CreateTable(context.Background(), client, table); err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(*testing.T) store.Store { return store.NewDynamoDB(client, table, storetest.TTL) })
}
