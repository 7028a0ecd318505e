package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/message"
)

func TestDeliveryKeys(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 10, 30, 15, 0, time.FixedZone("east", 3600))
	for _, tc := range []struct {
		name   string
		rec    message.Record
		pk, sk string
	}{
		{"whole second, other zone", message.Record{ID: "msg_1", Status: message.Accepted, EndpointID: "ep_1", CreatedAt: at},
			"ep#ep_1", "2026-11-24T09:30:15.000Z#msg_1"},
		{"milliseconds", message.Record{ID: "msg_2", Status: message.Accepted, EndpointID: "ep_2", CreatedAt: at.Add(7 * time.Millisecond)},
			"ep#ep_2", "2026-11-24T09:30:15.007Z#msg_2"},
		{"raw target", message.Record{ID: "msg_3", Status: message.Accepted, TargetHost: "h", CreatedAt: at}, "", ""},
		// A recovery names its endpoint, but is none of its deliveries.
		{"recovery", message.Record{ID: message.NewPrefixedID(message.RecoveryIDPrefix, at), Status: message.Accepted, EndpointID: "ep_1", CreatedAt: at}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			item := marshalRecord(tc.rec)
			var pk, sk string
			if v, ok := item[attrGSI2PK].(*types.AttributeValueMemberS); ok {
				pk = v.Value
			}
			if v, ok := item[attrGSI2SK].(*types.AttributeValueMemberS); ok {
				sk = v.Value
			}
			if pk != tc.pk || sk != tc.sk {
				t.Errorf("gsi2 = %q, %q; want %q, %q", pk, sk, tc.pk, tc.sk)
			}
		})
	}
}

// unmatchedQueries is a DynamoDB whose Query reads full pages that the status filter empties,
// with more always left to read; it records every input and the last key each read.
type unmatchedQueries struct {
	DynamoDBAPI
	inputs []*dynamodb.QueryInput
	lasts  []map[string]types.AttributeValue
}

func (u *unmatchedQueries) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	u.inputs = append(u.inputs, in)
	n := len(u.inputs)
	sk := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).Add(-time.Duration(n)*time.Minute).Format(sortKeyTime) + "#" + message.NewID(time.Now())
	id, _ := idOfSortKey(sk)
	last := map[string]types.AttributeValue{attrID: str(id), attrGSI2PK: str("ep#ep_1"), attrGSI2SK: str(sk)}
	u.lasts = append(u.lasts, last)
	return &dynamodb.QueryOutput{LastEvaluatedKey: last}, nil
}

func TestListDeliveriesReadBound(t *testing.T) {
	t.Parallel()
	api := &unmatchedQueries{}
	d := NewDynamoDB(api, "t", time.Hour)
	q := DeliveryQuery{EndpointID: "ep_1", Status: message.Failed, Limit: 5}
	pg, err := d.ListDeliveries(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(api.inputs) != deliveryQueryPages || len(pg.Records) != 0 || pg.Next == "" {
		t.Fatalf("%d queries gave %d records, next %q; want %d queries, none and a cursor", len(api.inputs), len(pg.Records), pg.Next, deliveryQueryPages)
	}
	q.Cursor = pg.Next
	if _, err := d.ListDeliveries(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	// The next page starts where the bound stopped reading, not over again.
	if got, want := api.inputs[deliveryQueryPages].ExclusiveStartKey, api.lasts[deliveryQueryPages-1]; !reflect.DeepEqual(got, want) {
		t.Fatalf("next page starts at %v, want %v", got, want)
	}
	if f := api.inputs[0].FilterExpression; f == nil || *f != "#status = :status" || api.inputs[0].ScanIndexForward == nil || *api.inputs[0].ScanIndexForward {
		t.Fatalf("query filter %v, forward %v; want a status filter, newest first", f, api.inputs[0].ScanIndexForward)
	}
}
