package store_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/store"
	"github.com/pushfn/pushfn/shared/store/storetest"
)

func TestIntegrationDynamoDBConformance(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.Table(t, client)
	storetest.Run(t, func(*testing.T) store.Store { return store.NewDynamoDB(client, table, storetest.TTL) })
}

func TestIntegrationCreateTable(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.Name(t)
	dropTable(t, client, table)
	for i := range 2 { // the second call finds the table and its TTL in place
		if err := store.CreateTable(context.Background(), client, table); err != nil {
			t.Fatalf("CreateTable #%d: %v", i+1, err)
		}
	}
	desc, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	tbl := desc.Table
	if tbl.TableStatus != types.TableStatusActive {
		t.Errorf("status = %s, want ACTIVE", tbl.TableStatus)
	}
	if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode = %+v, want PAY_PER_REQUEST", tbl.BillingModeSummary)
	}
	if len(tbl.KeySchema) != 1 || aws.ToString(tbl.KeySchema[0].AttributeName) != "id" || tbl.KeySchema[0].KeyType != types.KeyTypeHash {
		t.Errorf("key schema = %+v, want hash key id", tbl.KeySchema)
	}
	ttl, err := client.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "ttl" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL = %+v, want enabled on ttl", d)
	}
}

// dropTable deletes table when the test ends, so the shared emulator does not fill up.
func dropTable(t *testing.T, client *dynamodb.Client, table string) {
	t.Cleanup(func() {
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Logf("delete table %s: %v", table, err)
		}
	})
}
