package status

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/message"
)

// ScanAPI is the part of the DynamoDB client that counting the records calls; *dynamodb.Client
// has it.
type ScanAPI interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ ScanAPI = (*dynamodb.Client)(nil)

// Table counts a local run's records by state with a Scan of the table, page by page, reading
// only each item's id and status. A Scan reads the whole table, which is fine for the small table
// of a local run and is why the page is local only: in AWS the same figures come from the metrics.
type Table struct {
	API  ScanAPI
	Name string
	// MaxItems bounds one count: past it the count stops and says it is partial. 0 means
	// DefaultMaxItems.
	MaxItems int
}

// states are the states of a record, in the order of its life.
var states = []message.Status{message.Accepted, message.Delivering, message.Retrying, message.Delivered, message.Failed, message.Expired}

// DefaultMaxItems is how many items a count reads at most when Table.MaxItems is 0.
const DefaultMaxItems = 200_000

// pageSize is the most items one Scan request reads.
const pageSize = 1000

// States is a count of the table's records by state.
type States struct {
	// Messages counts the records of messages (ids msg_...) by status.
	Messages map[string]int `json:"by_state"`
	// Deliveries counts the records of a fan-out's deliveries (ids dlv_...) by status.
	Deliveries map[string]int `json:"fanout_deliveries_by_state"`
	// Scanned is how many items were read, every kind of record included (endpoints, recoveries).
	Scanned int `json:"items_scanned"`
	// Partial is set when the count stopped at MaxItems.
	Partial bool `json:"partial"`
}

// Count reads the table and counts its records by state.
func (t *Table) Count(ctx context.Context) (States, error) {
	limit := t.MaxItems
	if limit <= 0 {
		limit = DefaultMaxItems
	}
	st := States{Messages: map[string]int{}, Deliveries: map[string]int{}}
	for _, s := range states {
		st.Messages[string(s)] = 0
	}
	in := &dynamodb.ScanInput{
		TableName: aws.String(t.Name),
		// The item attributes the store writes (the README's data model).
		ProjectionExpression:     aws.String("#id, #status"),
		ExpressionAttributeNames: map[string]string{"#id": "id", "#status": "status"},
		Limit:                    aws.Int32(pageSize),
	}
	for {
		out, err := t.API.Scan(ctx, in)
		if err != nil {
			return States{}, fmt.Errorf("count the records of table %s: %w", t.Name, err)
		}
		for _, item := range out.Items {
			st.Scanned++
			id, _ := item["id"].(*types.AttributeValueMemberS)
			status, _ := item["status"].(*types.AttributeValueMemberS)
			if id == nil || status == nil {
				continue
			}
			switch {
			case strings.HasPrefix(id.Value, message.DeliveryIDPrefix):
				st.Deliveries[status.Value]++
			case message.ValidID(id.Value):
				st.Messages[status.Value]++
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return st, nil
		}
		if st.Scanned >= limit {
			st.Partial = true
			return st, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
