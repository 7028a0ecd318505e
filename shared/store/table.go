package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableAPI is the part of the DynamoDB client that CreateTable calls; *dynamodb.Client has it.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

var _ TableAPI = (*dynamodb.Client)(nil)

// tableWait bounds how long CreateTable waits for a new table to become active.
const tableWait = 5 * time.Minute

// Index is a global secondary index of the table: a string partition and sort key, every
// attribute projected.
type Index struct{ Name, PartitionKey, SortKey string }

// Indexes returns the table's global secondary indexes. gsi1 lists endpoints by tenant (gsi1pk
// "tenant#<id>", gsi1sk the endpoint id); gsi2 lists every endpoint (gsi2pk "endpoints", gsi2sk
// the id) and an endpoint's deliveries by time (gsi2pk "ep#<endpoint id>", gsi2sk created_at to
// the millisecond + "#" + message id). Both are overloaded: other item kinds may use them with
// partition keys of their own.
func Indexes() []Index {
	return []Index{
		{indexByTenant, attrGSI1PK, attrGSI1SK},
		{indexAllEndpoints, attrGSI2PK, attrGSI2SK},
	}
}

func indexSpec(name, pk, sk string) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(name),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

func stringAttr(name string) types.AttributeDefinition {
	return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
}

// CreateTable creates the table DynamoDB keeps its records in: on-demand capacity, hash key id,
// the Indexes, TTL on the ttl attribute. It returns once the table and its indexes are active
// with TTL enabled. A table that exists already is fine, so it can run on every start; an index
// it lacks (a table made before the index existed) is added. Point-in-time recovery is left to
// the deployment template.
func CreateTable(ctx context.Context, api TableAPI, name string) error {
	attrs := []types.AttributeDefinition{stringAttr(attrID)}
	var indexes []types.GlobalSecondaryIndex
	for _, ix := range Indexes() {
		attrs = append(attrs, stringAttr(ix.PartitionKey), stringAttr(ix.SortKey))
		indexes = append(indexes, indexSpec(ix.Name, ix.PartitionKey, ix.SortKey))
	}
	_, err := api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:              aws.String(name),
		BillingMode:            types.BillingModePayPerRequest,
		AttributeDefinitions:   attrs,
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String(attrID), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: indexes,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if err := waitActive(ctx, api, name); err != nil {
		return err
	}
	if err := addIndexes(ctx, api, name); err != nil {
		return err
	}
	ttl, err := api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe TTL of table %s: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attrTTL &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on table %s: %w", name, err)
	}
	return nil
}

// waitActive waits until the table and every index it has are active.
func waitActive(ctx context.Context, api TableAPI, name string) error {
	waiter := dynamodb.NewTableExistsWaiter(api, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 500 * time.Millisecond
		o.MaxDelay = 5 * time.Second
		o.Retryable = func(ctx context.Context, in *dynamodb.DescribeTableInput, out *dynamodb.DescribeTableOutput, err error) (bool, error) {
			if err != nil {
				var nf *types.ResourceNotFoundException
				return errors.As(err, &nf), nil
			}
			if out.Table == nil || out.Table.TableStatus != types.TableStatusActive {
				return true, nil
			}
			for _, ix := range out.Table.GlobalSecondaryIndexes {
				if ix.IndexStatus != types.IndexStatusActive {
					return true, nil
				}
			}
			return false, nil
		}
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, tableWait); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	return nil
}

// addIndexes adds the Indexes a table lacks, one at a time as DynamoDB requires, each waited on.
func addIndexes(ctx context.Context, api TableAPI, name string) error {
	desc, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", name, err)
	}
	have := map[string]bool{}
	if desc.Table != nil {
		for _, ix := range desc.Table.GlobalSecondaryIndexes {
			have[aws.ToString(ix.IndexName)] = true
		}
	}
	for _, ix := range Indexes() {
		if have[ix.Name] {
			continue
		}
		spec := indexSpec(ix.Name, ix.PartitionKey, ix.SortKey)
		_, err := api.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            aws.String(name),
			AttributeDefinitions: []types.AttributeDefinition{stringAttr(ix.PartitionKey), stringAttr(ix.SortKey)},
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
				IndexName: spec.IndexName, KeySchema: spec.KeySchema, Projection: spec.Projection,
			}}},
		})
		if err != nil {
			return fmt.Errorf("add index %s to table %s: %w", ix.Name, name, err)
		}
		if err := waitActive(ctx, api, name); err != nil {
			return err
		}
	}
	return nil
}
