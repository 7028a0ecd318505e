package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var _ Slots = (*DynamoDBSlots)(nil)

// SlotsAPI is the part of the DynamoDB client that DynamoDBSlots calls; *dynamodb.Client has it.
type SlotsAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ SlotsAPI = (*dynamodb.Client)(nil)

// DynamoDBSlots keeps each rate-limited endpoint's slot counter as one item of pushfn's table
// (id "rl#" + the endpoint id, with next, rate and a ttl a day after its last write, so an
// endpoint deleted leaves nothing behind). A reservation is one conditional UpdateItem when the
// counter can be continued, two when it must restart (see Slots), a few more when reservations
// race for a restart. It is safe for concurrent use.
type DynamoDBSlots struct {
	api   SlotsAPI
	table string
}

// NewDynamoDBSlots returns the Slots kept in table.
func NewDynamoDBSlots(api SlotsAPI, table string) *DynamoDBSlots {
	return &DynamoDBSlots{api: api, table: table}
}

// Slot counter attributes, beside id and ttl.
const (
	attrNext = "next"
	attrRate = "rate"
)

// slotsTTL is how long a slot counter outlives its last write.
const slotsTTL = 24 * time.Hour

// maxSlotTries bounds the writes of one reservation: a restart lost to another container's is
// followed by a continuation of the counter it wrote.
const maxSlotTries = 4

// ReserveSlots implements Slots.
func (d *DynamoDBSlots) ReserveSlots(ctx context.Context, endpointID string, rate int, nowSlot int64, k int) (int64, error) {
	if err := checkSlotArgs(endpointID, rate, nowSlot, k); err != nil {
		return 0, fmt.Errorf("reserve slots of %s: %w", endpointID, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("reserve slots of %s: %w", endpointID, err)
	}
	ttl := num(time.Unix(nowSlot/int64(rate), 0).Add(slotsTTL).Unix())
	id := slotsKey(endpointID)
	for range maxSlotTries {
		out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                           aws.String(d.table),
			Key:                                 key(id),
			UpdateExpression:                    aws.String("SET #next = #next + :k, #ttl = :ttl"),
			ConditionExpression:                 aws.String("#rate = :rate AND #next >= :now"),
			ExpressionAttributeNames:            map[string]string{"#next": attrNext, "#rate": attrRate, "#ttl": attrTTL},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":k": num(int64(k)), ":rate": num(int64(rate)), ":now": num(nowSlot), ":ttl": ttl},
			ReturnValues:                        types.ReturnValueUpdatedNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			next, perr := slotNumber(out.Attributes, attrNext)
			if perr != nil {
				return 0, fmt.Errorf("reserve slots of %s: %w", endpointID, perr)
			}
			return next - int64(k), nil
		}
		old, seen, err := slotConflict(err)
		if err != nil {
			return 0, fmt.Errorf("reserve slots of %s: %w", endpointID, err)
		}
		first, restarted, err := d.restart(ctx, id, old, seen, rate, nowSlot, k, ttl)
		if err != nil {
			return 0, fmt.Errorf("reserve slots of %s: %w", endpointID, err)
		}
		if restarted {
			return first, nil
		}
	}
	return 0, fmt.Errorf("reserve slots of %s: %d tries lost to other reservations", endpointID, maxSlotTries)
}

// restart writes the counter anew from old (seen false when there was no item), if it is still
// what was seen. It reports false when another write came first.
func (d *DynamoDBSlots) restart(ctx context.Context, id string, old slotCounter, seen bool, rate int, nowSlot int64, k int, ttl types.AttributeValue) (int64, bool, error) {
	first := restart(old.next, old.rate, rate, nowSlot)
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       key(id),
		UpdateExpression:          aws.String("SET #next = :next, #rate = :rate, #ttl = :ttl"),
		ExpressionAttributeNames:  map[string]string{"#next": attrNext, "#rate": attrRate, "#ttl": attrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{":next": num(first + int64(k)), ":rate": num(int64(rate)), ":ttl": ttl},
	}
	if seen {
		in.ConditionExpression = aws.String("#next = :oldnext AND #rate = :oldrate")
		in.ExpressionAttributeValues[":oldnext"] = num(old.next)
		in.ExpressionAttributeValues[":oldrate"] = num(int64(old.rate))
	} else {
		in.ConditionExpression = aws.String("attribute_not_exists(#id)")
		in.ExpressionAttributeNames["#id"] = attrID
	}
	_, err := d.api.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return first, true, nil
}

// slotConflict reads the counter a failed condition returned with err; seen is false when there
// was no item. Any error but a failed condition is returned.
func slotConflict(err error) (c slotCounter, seen bool, _ error) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return slotCounter{}, false, err
	}
	if len(ccf.Item) == 0 {
		return slotCounter{}, false, nil
	}
	next, err := slotNumber(ccf.Item, attrNext)
	if err != nil {
		return slotCounter{}, false, err
	}
	rate, err := slotNumber(ccf.Item, attrRate)
	if err != nil {
		return slotCounter{}, false, err
	}
	return slotCounter{next: next, rate: int(rate)}, true, nil
}

// slotNumber reads the number attribute name of a slot counter item.
func slotNumber(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("%w: slot counter has no number %s", ErrMalformed, name)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: slot counter %s %q: %v", ErrMalformed, name, v.Value, err)
	}
	return n, nil
}
