package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/message"
)

// deliveryQueryPages bounds the Query requests of one page filtered by status, so that a rare
// status among many deliveries costs a bounded read; the page then ends early with a cursor.
const deliveryQueryPages = 10

// ListDeliveries implements Deliveries: a Query of gsi2 on the endpoint's partition, newest
// first, the time filters as the key condition and the status as a filter; more than one Query
// only when DynamoDB's page ends early or the status filter dropped items.
func (d *DynamoDB) ListDeliveries(ctx context.Context, q DeliveryQuery) (DeliveryPage, error) {
	op := "list deliveries of " + q.EndpointID
	if err := ctx.Err(); err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	after, err := decodeDeliveryCursor(q)
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	if q.empty() {
		return DeliveryPage{}, nil
	}
	pk := endpointDeliveriesPrefix + q.EndpointID
	names := map[string]string{"#pk": attrGSI2PK}
	values := map[string]types.AttributeValue{":pk": str(pk)}
	cond := "#pk = :pk"
	lo, hi := q.bounds()
	if lo != "" || hi != "" {
		names["#sk"] = attrGSI2SK
	}
	switch {
	case lo != "" && hi != "":
		cond += " AND #sk BETWEEN :lo AND :hi"
		values[":lo"], values[":hi"] = str(lo), str(hi)
	case lo != "":
		cond += " AND #sk >= :lo"
		values[":lo"] = str(lo)
	case hi != "":
		cond += " AND #sk <= :hi"
		values[":hi"] = str(hi)
	}
	var filter *string
	if q.Status != "" {
		filter = aws.String("#status = :status")
		names["#status"] = attrStatus
		values[":status"] = str(string(q.Status))
	}
	var start map[string]types.AttributeValue
	if after != "" {
		id, _ := idOfSortKey(after)
		start = map[string]types.AttributeValue{attrID: str(id), attrGSI2PK: str(pk), attrGSI2SK: str(after)}
	}
	limit := q.limit()
	var recs []message.Record
	var sks []string
	// One more than the page, so that a cursor is given only when another page exists.
	for range deliveryQueryPages {
		want := int32(limit + 1 - len(recs))
		if filter != nil {
			want = MaxListLimit + 1 // items read, before the filter
		}
		out, err := d.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(d.table),
			IndexName:                 aws.String(indexAllEndpoints),
			KeyConditionExpression:    aws.String(cond),
			FilterExpression:          filter,
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
			ExclusiveStartKey:         start,
			ScanIndexForward:          aws.Bool(false),
			Limit:                     aws.Int32(want),
		})
		if err != nil {
			return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
		}
		for _, item := range out.Items {
			rec, err := unmarshalRecord(item)
			if err != nil {
				return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
			}
			recs = append(recs, rec)
			sks = append(sks, (&itemReader{item: item}).str(attrGSI2SK))
		}
		start = out.LastEvaluatedKey
		if start == nil || len(recs) > limit {
			break
		}
	}
	page := DeliveryPage{Records: recs}
	switch {
	case len(recs) > limit:
		page.Records = recs[:limit]
		page.Next = encodeDeliveryCursor(q, sks[limit-1])
	case start != nil:
		// The read bound ended the page before it filled: continue after what was read.
		sk, ok := start[attrGSI2SK].(*types.AttributeValueMemberS)
		if !ok {
			return DeliveryPage{}, fmt.Errorf("%s: %w: the index's last key has no %s", op, ErrMalformed, attrGSI2SK)
		}
		page.Next = encodeDeliveryCursor(q, sk.Value)
	}
	return page, nil
}
