package store_test

import (
	"context"
	"reflect"
	"strings"
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

func TestIntegrationDynamoDBDeliveriesConformance(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.Table(t, client)
	storetest.RunDeliveries(t, func(*testing.T) storetest.DeliveryStore { return store.NewDynamoDB(client, table, storetest.TTL) })
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
	checkIndexes(t, tbl)
}

// A table made before the indexes existed (hash key id only) gets them on the next start.
func TestIntegrationCreateTableAddsIndexes(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.Name(t)
	dropTable(t, client, table)
	_, err := client.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(context.Background(), client, table); err != nil {
		t.Fatalf("CreateTable on a table without indexes: %v", err)
	}
	desc, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, desc.Table)
}

// checkIndexes checks the table has gsi1 (gsi1pk, gsi1sk) and gsi2 (gsi2pk, gsi2sk), active,
// projecting every attribute.
func checkIndexes(t *testing.T, tbl *types.TableDescription) {
	t.Helper()
	got := map[string]string{}
	for _, ix := range tbl.GlobalSecondaryIndexes {
		var keys []string
		for _, k := range ix.KeySchema {
			keys = append(keys, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
		}
		proj := types.ProjectionType("")
		if ix.Projection != nil {
			proj = ix.Projection.ProjectionType
		}
		got[aws.ToString(ix.IndexName)] = strings.Join(keys, ",") + " " + string(proj) + " " + string(ix.IndexStatus)
	}
	want := map[string]string{
		"gsi1": "gsi1pk:HASH,gsi1sk:RANGE ALL ACTIVE",
		"gsi2": "gsi2pk:HASH,gsi2sk:RANGE ALL ACTIVE",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("indexes = %v, want %v", got, want)
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

func TestIntegrationDynamoDBEndpointsConformance(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.Table(t, client)
	storetest.RunEndpoints(t, func(*testing.T) store.Endpoints { return store.NewDynamoDBEndpoints(client, table) })
}
