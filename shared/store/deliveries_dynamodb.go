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

// ListMessageDeliveries implements Deliveries: one Query of gsi1 on the message's partition.
func (d *DynamoDB) ListMessageDeliveries(ctx context.Context, q MessageDeliveryQuery) (DeliveryPage, error) {
	op := "list deliveries of " + q.MessageID
	if err := ctx.Err(); err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	pk := messageDeliveriesPrefix + q.MessageID
	after, err := decodeCursor(q.Cursor, pk)
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
	}
	// The cursor's position is a key condition (sort key after it), not a start key: exact
	// whatever the table key of the item there.
	cond := "#pk = :pk"
	names := map[string]string{"#pk": attrGSI1PK}
	values := map[string]types.AttributeValue{":pk": str(pk)}
	if after != "" {
		cond += " AND #sk > :after"
		names["#sk"], values[":after"] = attrGSI1SK, str(after)
	}
	var start map[string]types.AttributeValue
	limit := EndpointQuery{Limit: q.Limit}.limit()
	var page DeliveryPage
	// One more than the page, so that a cursor is given only when another page exists; a page
	// DynamoDB ends early (1 MB) is followed on.
	for {
		out, err := d.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(d.table),
			IndexName:                 aws.String(indexByTenant),
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
			ExclusiveStartKey:         start,
			Limit:                     aws.Int32(int32(limit + 1 - len(page.Records))),
		})
		if err != nil {
			return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
		}
		for _, item := range out.Items {
			rec, err := unmarshalRecord(item)
			if err != nil {
				return DeliveryPage{}, fmt.Errorf("%s: %w", op, err)
			}
			page.Records = append(page.Records, rec)
		}
		start = out.LastEvaluatedKey
		if start == nil || len(page.Records) > limit {
			break
		}
	}
	if len(page.Records) > limit {
		page.Records = page.Records[:limit]
		page.Next = encodeCursor(pk, page.Records[limit-1].EndpointID)
	}
	return page, nil
}

// CountDeliveries implements Deliveries: Queries of gsi1 on the message's partition that return
// only the status of each delivery (DynamoDB's 1 MB pages still count whole items).
func (d *DynamoDB) CountDeliveries(ctx context.Context, messageID string) (map[message.Status]int, error) {
	op := "count deliveries of " + messageID
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	counts := map[message.Status]int{}
	var start map[string]types.AttributeValue
	for {
		out, err := d.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(d.table),
			IndexName:                 aws.String(indexByTenant),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ProjectionExpression:      aws.String("#status"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrGSI1PK, "#status": attrStatus},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(messageDeliveriesPrefix + messageID)},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for _, item := range out.Items {
			r := &itemReader{item: item}
			st := message.Status(r.str(attrStatus))
			if r.err != nil || st == "" {
				return nil, fmt.Errorf("%s: %w: a delivery without a status", op, ErrMalformed)
			}
			counts[st]++
		}
		if start = out.LastEvaluatedKey; start == nil {
			return counts, nil
		}
	}
}
