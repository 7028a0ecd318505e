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

	"github.com/pushfn/pushfn/shared/message"
)

var (
	_ Store      = (*DynamoDB)(nil)
	_ Deliveries = (*DynamoDB)(nil)
)

// DynamoDBAPI is the part of the DynamoDB client that DynamoDB calls; *dynamodb.Client has it.
type DynamoDBAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

// DynamoDB is the Store kept in a DynamoDB table with hash key id (see CreateTable). Every write
// is one conditional request; a failed condition returns the item found in the same request, so
// the store never reads before it writes. Lease times are kept to the millisecond. It is safe for
// concurrent use.
type DynamoDB struct {
	api   DynamoDBAPI
	table string
	ttl   time.Duration
}

// NewDynamoDB returns the Store kept in table. Every write sets the item's ttl attribute to the
// write's time plus ttl (DefaultTTL when ttl is zero or less).
func NewDynamoDB(api DynamoDBAPI, table string, ttl time.Duration) *DynamoDB {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &DynamoDB{api: api, table: table, ttl: ttl}
}

// Item attribute names (the README's data model).
const (
	attrID             = "id"
	attrStatus         = "status"
	attrFingerprint    = "fingerprint"
	attrIdempotencyKey = "idempotency_key"
	attrTargetHost     = "target_host"
	attrEndpointID     = "endpoint_id" // present only for a message to an endpoint
	attrAttempts       = "attempts"
	attrLeaseToken     = "lease_token"
	attrLeaseUntil     = "lease_until" // epoch milliseconds, so conditions compare numbers
	attrFinishedBy     = "finished_by" // the lease token of the last claimed result write
	attrLastAttempt    = "last_attempt"
	attrCreatedAt      = "created_at"
	attrUpdatedAt      = "updated_at"
	attrDeliveredAt    = "delivered_at"
	attrExpiresAt      = "expires_at"
	attrTTL            = "ttl" // epoch seconds: DynamoDB's TTL attribute
	attrCreateToken    = "create_token"
	attrReplayed       = "replayed" // a boolean, present only once set
	// A fan-out's record: its event type (and tenant_id), and the progress of its expansion.
	attrEventType        = "event_type"
	attrFanoutCursor     = "fanout_cursor"
	attrFanoutDeliveries = "fanout_deliveries"
	// A delivery's record: the message it belongs to.
	attrMessageID = "message_id"
	// A recovery's record: its window and how many failed deliveries it found.
	attrRecoverSince = "recover_since"
	attrRecoverUntil = "recover_until"
	attrMatched      = "matched"
	// A record that ended failed or expired keeps its queued copy, gzip-compressed (binary), to be
	// reopened; last_attempt_list holds last_attempt as a one-element list (written with it by
	// every result but delivered), which a reopen appends to history in the same write.
	attrCopy            = "copy_gz"
	attrLastAttemptList = "last_attempt_list"
	attrHistory         = "history"
	attrReopenToken     = "reopen_token"
	attrReopenedAt      = "reopened_at"
)

// Create implements Store.
func (d *DynamoDB) Create(ctx context.Context, rec message.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create %s: %w", rec.ID, err)
	}
	rec.Status = message.Accepted
	rec.TTL = ttlAt(createTime(rec), d.ttl)
	_, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(d.table),
		Item:                                marshalRecord(rec),
		ConditionExpression:                 aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames:            map[string]string{"#id": attrID},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		err = d.conflict("create", rec.ID, err, func(message.Record) error { return ErrExists })
		var c *ConflictError
		if rec.CreateToken != "" && errors.As(err, &c) && c.Record.CreateToken == rec.CreateToken {
			return nil
		}
		return err
	}
	return nil
}

// Get implements Store. It reads with strong consistency.
func (d *DynamoDB) Get(ctx context.Context, id string) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, fmt.Errorf("get %s: %w", id, err)
	}
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(d.table),
		Key:            key(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return message.Record{}, fmt.Errorf("get %s: %w", id, err)
	}
	if out.Item == nil {
		return message.Record{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	rec, err := unmarshalRecord(out.Item)
	if err != nil {
		return message.Record{}, fmt.Errorf("get %s: %w", id, err)
	}
	return rec, nil
}

// Claim implements Store.
func (d *DynamoDB) Claim(ctx context.Context, id string, c Claim) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, fmt.Errorf("claim %s: %w", id, err)
	}
	names := map[string]string{
		"#status": attrStatus, "#attempts": attrAttempts, "#lease_token": attrLeaseToken,
		"#lease_until": attrLeaseUntil, "#updated_at": attrUpdatedAt, "#ttl": attrTTL,
	}
	values := map[string]types.AttributeValue{
		":accepted":   str(string(message.Accepted)),
		":retrying":   str(string(message.Retrying)),
		":delivering": str(string(message.Delivering)),
		":now":        num(c.Now.UnixMilli()),
		":zero":       num(0),
		":one":        num(1),
		":token":      str(c.Token),
		":until":      num(c.Now.Add(c.Lease).UnixMilli()),
		":updated_at": timeValue(c.Now),
		":ttl":        num(ttlAt(c.Now, d.ttl).Unix()),
	}
	cond := "(#status IN (:accepted, :retrying) OR (#status = :delivering AND #lease_until < :now) OR " +
		"(#status = :failed AND begins_with(#last_attempt.#error, :dead_lettered)))"
	names["#last_attempt"], names["#error"] = attrLastAttempt, "error"
	values[":failed"] = str(string(message.Failed))
	values[":dead_lettered"] = str(message.ReasonDeadLettered)
	if c.Fingerprint != "" {
		cond += " AND #fingerprint = :fingerprint"
		names["#fingerprint"] = attrFingerprint
		values[":fingerprint"] = str(c.Fingerprint)
	}
	set := "SET #status = :delivering, #attempts = if_not_exists(#attempts, :zero) + :one, " +
		"#lease_token = :token, #lease_until = :until, #updated_at = :updated_at, #ttl = :ttl"
	if c.New != nil {
		cond = "attribute_not_exists(#id) OR (" + cond + ")"
		names["#id"] = attrID
		set += newRecordSets(id, *c.New, names, values)
	}
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 key(id),
		ConditionExpression:                 aws.String(cond),
		UpdateExpression:                    aws.String(set),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		// The SDK retries a request whose answer was lost; when the first one was applied, the
		// retry's condition fails on the lease this claim took.
		if old, ok := conditionRecord(err); ok && old.Status == message.Delivering && old.LeaseToken == c.Token {
			return old, nil
		}
		return message.Record{}, d.conflict("claim", id, err, func(old message.Record) error {
			switch {
			case old.Status.Final() && !deadLettered(old):
				return ErrFinal
			case c.Fingerprint != "" && old.Fingerprint != c.Fingerprint:
				return ErrStale
			}
			return ErrLeased
		})
	}
	return d.written("claim", id, out.Attributes)
}

// Finish implements Store.
func (d *DynamoDB) Finish(ctx context.Context, id string, o Outcome) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, fmt.Errorf("finish %s: %w", id, err)
	}
	names := map[string]string{
		"#status": attrStatus, "#updated_at": attrUpdatedAt, "#ttl": attrTTL,
		"#lease_token": attrLeaseToken, "#lease_until": attrLeaseUntil,
	}
	values := map[string]types.AttributeValue{
		":status":     str(string(o.Status)),
		":updated_at": timeValue(o.Now),
		":ttl":        num(ttlAt(o.Now, d.ttl).Unix()),
	}
	set := "SET #status = :status, #updated_at = :updated_at, #ttl = :ttl"
	remove := " REMOVE #lease_token, #lease_until"
	if o.Attempt != nil {
		set += ", #last_attempt = :last_attempt"
		names["#last_attempt"] = attrLastAttempt
		values[":last_attempt"] = attemptValue(*o.Attempt)
		if o.Status != message.Delivered {
			set += ", #last_attempt_list = :last_attempt_list"
			names["#last_attempt_list"] = attrLastAttemptList
			values[":last_attempt_list"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{values[":last_attempt"]}}
		}
	}
	switch {
	case o.Status == message.Delivered:
		// A delivery that succeeds keeps no byte of its payload.
		set += ", #delivered_at = :updated_at"
		remove += ", #copy, #last_attempt_list"
		names["#delivered_at"], names["#copy"], names["#last_attempt_list"] = attrDeliveredAt, attrCopy, attrLastAttemptList
	case keepsCopy(o):
		names["#copy"] = attrCopy
		if gz, ok := compressCopy(o.Keep); ok {
			set += ", #copy = :copy"
			values[":copy"] = &types.AttributeValueMemberB{Value: gz}
		} else {
			remove += ", #copy"
		}
	}
	if p := o.Fanout; p != nil && o.Token != "" {
		set += ", #fanout_cursor = :fanout_cursor, #fanout_deliveries = :fanout_deliveries, #matched = :matched"
		names["#fanout_cursor"], names["#fanout_deliveries"], names["#matched"] = attrFanoutCursor, attrFanoutDeliveries, attrMatched
		values[":fanout_cursor"], values[":fanout_deliveries"], values[":matched"] = str(p.Cursor), num(int64(p.Deliveries)), num(int64(p.Matched))
	}
	var cond string
	values[":delivering"] = str(string(message.Delivering))
	if o.Token != "" {
		cond = "#status = :delivering AND #lease_token = :token"
		set += ", #finished_by = :token"
		names["#finished_by"] = attrFinishedBy
		values[":token"] = str(o.Token)
	} else {
		cond = "NOT (#status IN (:delivered, :failed, :expired)) AND " +
			"NOT (#status = :delivering AND #lease_until >= :now)"
		names["#id"] = attrID
		values[":delivered"] = str(string(message.Delivered))
		values[":failed"] = str(string(message.Failed))
		values[":expired"] = str(string(message.Expired))
		values[":now"] = num(o.Now.UnixMilli())
		if o.Fingerprint != "" {
			cond += " AND #fingerprint = :fingerprint"
			names["#fingerprint"] = attrFingerprint
			values[":fingerprint"] = str(o.Fingerprint)
		}
		if o.New != nil {
			cond = "attribute_not_exists(#id) OR (" + cond + ")"
			set += newRecordSets(id, *o.New, names, values)
		} else {
			cond = "attribute_exists(#id) AND " + cond
		}
	}
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 key(id),
		ConditionExpression:                 aws.String(cond),
		UpdateExpression:                    aws.String(set + remove),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		// A retry of a finish that was applied but whose answer was lost meets the finisher
		// this finish named.
		if old, ok := conditionRecord(err); ok && o.Token != "" && old.FinishedBy == o.Token {
			return old, nil
		}
		return message.Record{}, d.conflict("finish", id, err, func(old message.Record) error {
			switch {
			case o.Token != "":
				return ErrLeaseLost
			case old.Status.Final():
				return ErrFinal
			case o.Fingerprint != "" && old.Fingerprint != o.Fingerprint:
				return ErrStale
			}
			return ErrLeased
		})
	}
	return d.written("finish", id, out.Attributes)
}

// Checkpoint implements Store.
func (d *DynamoDB) Checkpoint(ctx context.Context, id string, p Progress) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	names := map[string]string{
		"#status": attrStatus, "#lease_token": attrLeaseToken, "#updated_at": attrUpdatedAt, "#ttl": attrTTL,
		"#fanout_cursor": attrFanoutCursor, "#fanout_deliveries": attrFanoutDeliveries, "#matched": attrMatched,
	}
	values := map[string]types.AttributeValue{
		":delivering": str(string(message.Delivering)),
		":token":      str(p.Token),
		":cursor":     str(p.Cursor),
		":deliveries": num(int64(p.Deliveries)),
		":matched":    num(int64(p.Matched)),
		":updated_at": timeValue(p.Now),
		":ttl":        num(ttlAt(p.Now, d.ttl).Unix()),
	}
	set := "SET #fanout_cursor = :cursor, #fanout_deliveries = :deliveries, #matched = :matched, #updated_at = :updated_at, #ttl = :ttl"
	cond := "#status = :delivering AND #lease_token = :token"
	if p.Release {
		// A claim takes over a lease that ended before its own time. The claim that took this
		// lease counted an attempt; a pause is no failed one, so it is given back. The write
		// applies only to a lease still held, so a retry of it (its answer lost) does not give
		// it back twice: it fails its condition and reads as done.
		set += ", #lease_until = :released, #attempts = #attempts - :one"
		cond += " AND #lease_until >= :now"
		names["#lease_until"], names["#attempts"] = attrLeaseUntil, attrAttempts
		values[":released"], values[":now"], values[":one"] = num(p.Now.UnixMilli()-1), num(p.Now.UnixMilli()), num(1)
	}
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 key(id),
		ConditionExpression:                 aws.String(cond),
		UpdateExpression:                    aws.String(set),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		if old, ok := conditionRecord(err); ok && checkpointed(old, p) {
			return old, nil
		}
		return message.Record{}, d.conflict("checkpoint", id, err, func(message.Record) error { return ErrLeaseLost })
	}
	return d.written("checkpoint", id, out.Attributes)
}

// checkpointed reports whether rec holds p already: a checkpoint applied before, whose answer
// was lost. A released lease is no longer the record's, so only the progress is compared then.
func checkpointed(rec message.Record, p Progress) bool {
	return (rec.LeaseToken == p.Token || p.Release) && rec.FanoutCursor == p.Cursor && rec.FanoutDeliveries == p.Deliveries &&
		rec.Matched == p.Matched && rec.Status == message.Delivering
}

// newRecordSets returns the SET clauses (each starting ", ") that write the attributes of a
// record made by its first claim or finish (Claim.New), adding the names and values it uses.
func newRecordSets(id string, rec message.Record, names map[string]string, values map[string]types.AttributeValue) string {
	rec.ID = id
	var set string
	for name, v := range marshalRecord(rec) {
		switch name {
		case attrMessageID, attrEndpointID, attrFingerprint, attrTargetHost, attrCreatedAt, attrExpiresAt,
			attrGSI1PK, attrGSI1SK, attrGSI2PK, attrGSI2SK:
			names["#new_"+name] = name
			values[":new_"+name] = v
			set += ", #new_" + name + " = :new_" + name
		}
	}
	return set
}

// Delete implements Store. A delete whose answer was lost is retried by the SDK, finds no item
// and so succeeds, as it should.
func (d *DynamoDB) Delete(ctx context.Context, id, createToken string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	names := map[string]string{"#status": attrStatus, "#replayed": attrReplayed}
	values := map[string]types.AttributeValue{":accepted": str(string(message.Accepted))}
	cond := createdBy(createToken, names, values) + " AND #status = :accepted AND attribute_not_exists(#replayed)"
	_, err := d.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 key(id),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	err = d.conflict("delete", id, err, func(old message.Record) error {
		if old.Status != message.Accepted {
			return ErrNotAccepted
		}
		return ErrReplayed
	})
	var c *ConflictError
	if errors.Is(err, ErrNotFound) || (errors.As(err, &c) && c.Record.CreateToken != createToken) {
		return nil
	}
	return err
}

// MarkReplayed implements Store. It leaves updated_at alone: the message's state did not change.
func (d *DynamoDB) MarkReplayed(ctx context.Context, id, createToken string, now time.Time) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, fmt.Errorf("mark %s replayed: %w", id, err)
	}
	names := map[string]string{"#replayed": attrReplayed, "#ttl": attrTTL}
	values := map[string]types.AttributeValue{
		":true": &types.AttributeValueMemberBOOL{Value: true},
		":ttl":  num(ttlAt(now, d.ttl).Unix()),
	}
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 key(id),
		ConditionExpression:                 aws.String(createdBy(createToken, names, values)),
		UpdateExpression:                    aws.String("SET #replayed = :true, #ttl = :ttl"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return message.Record{}, d.conflict("mark replayed", id, err, func(message.Record) error { return ErrReplaced })
	}
	return d.written("mark replayed", id, out.Attributes)
}

// createdBy is the condition that the item exists and was written by the create that carried
// token; an empty token stands for a create that carried none (a record written before creates
// had tokens). It adds the names and values it uses.
func createdBy(token string, names map[string]string, values map[string]types.AttributeValue) string {
	names["#create_token"] = attrCreateToken
	if token == "" {
		names["#id"] = attrID
		return "attribute_exists(#id) AND attribute_not_exists(#create_token)"
	}
	values[":create_token"] = str(token)
	return "#create_token = :create_token"
}

// conflict turns the error of a conditional write into the Store's: a failed condition with no
// item returned means the record is missing (ErrNotFound); with an item, a *ConflictError
// wrapping the sentinel reason picks for it. Any other error is wrapped as it is.
func (d *DynamoDB) conflict(op, id string, err error, reason func(old message.Record) error) error {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	if len(ccf.Item) == 0 {
		return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
	}
	old, uerr := unmarshalRecord(ccf.Item)
	if uerr != nil {
		return fmt.Errorf("%s %s: condition failed on an unreadable item: %w", op, id, uerr)
	}
	return fmt.Errorf("%s %s: %w", op, id, &ConflictError{Err: reason(old), Record: old})
}

// conditionRecord is the record a failed condition returned with err, when err is one.
func conditionRecord(err error) (message.Record, bool) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || len(ccf.Item) == 0 {
		return message.Record{}, false
	}
	rec, uerr := unmarshalRecord(ccf.Item)
	return rec, uerr == nil
}

func (d *DynamoDB) written(op, id string, item map[string]types.AttributeValue) (message.Record, error) {
	rec, err := unmarshalRecord(item)
	if err != nil {
		return message.Record{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return rec, nil
}

// createTime is the time of a Create: the record's UpdatedAt, else its CreatedAt.
func createTime(rec message.Record) time.Time {
	if rec.UpdatedAt.IsZero() {
		return rec.CreatedAt
	}
	return rec.UpdatedAt
}

// ttlAt is the TTL of a record written at now: whole seconds, as DynamoDB's TTL attribute holds.
func ttlAt(now time.Time, ttl time.Duration) time.Time {
	return now.Add(ttl).Truncate(time.Second)
}

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrID: str(id)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func timeValue(t time.Time) types.AttributeValue { return str(t.UTC().Format(time.RFC3339Nano)) }

func attemptValue(a message.Attempt) types.AttributeValue {
	m := map[string]types.AttributeValue{
		"at":          timeValue(a.At),
		"status_code": num(int64(a.StatusCode)),
		"duration_ms": num(a.DurationMS),
	}
	if a.Error != "" {
		m["error"] = str(a.Error)
	}
	return &types.AttributeValueMemberM{Value: m}
}

// marshalRecord is the item of rec. Empty strings, zero times and a nil attempt are left out,
// so an item holds only what is known.
func marshalRecord(rec message.Record) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrID:       str(rec.ID),
		attrStatus:   str(string(rec.Status)),
		attrAttempts: num(int64(rec.Attempts)),
		attrTTL:      num(rec.TTL.Unix()),
	}
	putStr := func(name, v string) {
		if v != "" {
			item[name] = str(v)
		}
	}
	putTime := func(name string, t time.Time) {
		if !t.IsZero() {
			item[name] = timeValue(t)
		}
	}
	putStr(attrFingerprint, rec.Fingerprint)
	putStr(attrIdempotencyKey, rec.IdempotencyKey)
	putStr(attrTargetHost, rec.TargetHost)
	putStr(attrEndpointID, rec.EndpointID)
	if pk, sk, ok := deliveryKeys(rec); ok {
		// Written by the create only: the updates that follow leave them as they are.
		item[attrGSI2PK], item[attrGSI2SK] = str(pk), str(sk)
	}
	putStr(attrMessageID, rec.MessageID)
	if rec.MessageID != "" {
		item[attrGSI1PK], item[attrGSI1SK] = str(messageDeliveriesPrefix+rec.MessageID), str(rec.EndpointID)
	}
	putStr(attrEventType, rec.EventType)
	putStr(attrTenantID, rec.TenantID)
	putStr(attrFanoutCursor, rec.FanoutCursor)
	if rec.FanoutDeliveries > 0 {
		item[attrFanoutDeliveries] = num(int64(rec.FanoutDeliveries))
	}
	if rec.Matched > 0 {
		item[attrMatched] = num(int64(rec.Matched))
	}
	putTime(attrRecoverSince, rec.RecoverSince)
	putTime(attrRecoverUntil, rec.RecoverUntil)
	putStr(attrCreateToken, rec.CreateToken)
	if rec.Replayed {
		item[attrReplayed] = &types.AttributeValueMemberBOOL{Value: true}
	}
	putStr(attrLeaseToken, rec.LeaseToken)
	putStr(attrFinishedBy, rec.FinishedBy)
	if !rec.LeaseUntil.IsZero() {
		item[attrLeaseUntil] = num(rec.LeaseUntil.UnixMilli())
	}
	if rec.LastAttempt != nil {
		item[attrLastAttempt] = attemptValue(*rec.LastAttempt)
		if rec.Status != message.Delivered {
			item[attrLastAttemptList] = &types.AttributeValueMemberL{Value: []types.AttributeValue{item[attrLastAttempt]}}
		}
	}
	if rec.Copy != nil {
		if gz, ok := compressCopy(rec.Copy); ok {
			item[attrCopy] = &types.AttributeValueMemberB{Value: gz}
		}
	}
	if len(rec.History) > 0 {
		item[attrHistory] = historyValue(rec.History)
	}
	putStr(attrReopenToken, rec.ReopenToken)
	putTime(attrReopenedAt, rec.ReopenedAt)
	putTime(attrCreatedAt, rec.CreatedAt)
	putTime(attrUpdatedAt, rec.UpdatedAt)
	putTime(attrDeliveredAt, rec.DeliveredAt)
	if rec.ExpiresAt != nil {
		putTime(attrExpiresAt, *rec.ExpiresAt)
	}
	return item
}

// ErrMalformed is wrapped by a read that found an item without the shape marshalRecord or
// marshalEndpoint writes: reading it again will not help.
var ErrMalformed = errors.New("malformed item")

// itemReader reads typed attributes from an item, keeping the first error.
type itemReader struct {
	item map[string]types.AttributeValue
	err  error
}

func (r *itemReader) fail(name, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: attribute %s is not %s", ErrMalformed, name, want)
	}
}

func (r *itemReader) str(name string) string {
	v, ok := r.item[name]
	if !ok {
		return ""
	}
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		r.fail(name, "a string")
		return ""
	}
	return s.Value
}

func (r *itemReader) num(name string) int64 {
	v, ok := r.item[name]
	if !ok {
		return 0
	}
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		r.fail(name, "a number")
		return 0
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		r.fail(name, "an integer")
	}
	return i
}

func (r *itemReader) bool(name string) bool {
	v, ok := r.item[name]
	if !ok {
		return false
	}
	b, ok := v.(*types.AttributeValueMemberBOOL)
	if !ok {
		r.fail(name, "a boolean")
		return false
	}
	return b.Value
}

func (r *itemReader) time(name string) time.Time {
	s := r.str(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		r.fail(name, "an RFC 3339 time")
	}
	return t.UTC()
}

// attempt reads an attempt, the value of the attribute name (or an element of it).
func (r *itemReader) attempt(name string, v types.AttributeValue) message.Attempt {
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		r.fail(name, "a map")
		return message.Attempt{}
	}
	ar := &itemReader{item: m.Value}
	a := message.Attempt{
		At:         ar.time("at"),
		StatusCode: int(ar.num("status_code")),
		Error:      ar.str("error"),
		DurationMS: ar.num("duration_ms"),
	}
	if ar.err != nil && r.err == nil {
		r.err = fmt.Errorf("%s: %w", name, ar.err)
	}
	return a
}

// unmarshalRecord is the record of an item written by marshalRecord or the update expressions.
func unmarshalRecord(item map[string]types.AttributeValue) (message.Record, error) {
	r := &itemReader{item: item}
	rec := message.Record{
		ID:               r.str(attrID),
		Status:           message.Status(r.str(attrStatus)),
		Fingerprint:      r.str(attrFingerprint),
		IdempotencyKey:   r.str(attrIdempotencyKey),
		TargetHost:       r.str(attrTargetHost),
		EndpointID:       r.str(attrEndpointID),
		Attempts:         int(r.num(attrAttempts)),
		LeaseToken:       r.str(attrLeaseToken),
		FinishedBy:       r.str(attrFinishedBy),
		CreatedAt:        r.time(attrCreatedAt),
		UpdatedAt:        r.time(attrUpdatedAt),
		DeliveredAt:      r.time(attrDeliveredAt),
		CreateToken:      r.str(attrCreateToken),
		Replayed:         r.bool(attrReplayed),
		MessageID:        r.str(attrMessageID),
		EventType:        r.str(attrEventType),
		TenantID:         r.str(attrTenantID),
		FanoutCursor:     r.str(attrFanoutCursor),
		FanoutDeliveries: int(r.num(attrFanoutDeliveries)),
		Matched:          int(r.num(attrMatched)),
		RecoverSince:     r.time(attrRecoverSince),
		RecoverUntil:     r.time(attrRecoverUntil),
		ReopenToken:      r.str(attrReopenToken),
		ReopenedAt:       r.time(attrReopenedAt),
	}
	if _, ok := item[attrLeaseUntil]; ok {
		rec.LeaseUntil = time.UnixMilli(r.num(attrLeaseUntil)).UTC()
	}
	if _, ok := item[attrTTL]; ok {
		rec.TTL = time.Unix(r.num(attrTTL), 0).UTC()
	}
	if _, ok := item[attrExpiresAt]; ok {
		t := r.time(attrExpiresAt)
		rec.ExpiresAt = &t
	}
	if v, ok := item[attrLastAttempt]; ok {
		a := r.attempt(attrLastAttempt, v)
		rec.LastAttempt = &a
	}
	if v, ok := item[attrHistory]; ok {
		l, ok := v.(*types.AttributeValueMemberL)
		if !ok {
			r.fail(attrHistory, "a list")
		} else {
			for _, a := range l.Value {
				rec.History = append(rec.History, r.attempt(attrHistory, a))
			}
		}
	}
	if v, ok := item[attrCopy]; ok {
		b, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			r.fail(attrCopy, "binary")
		} else if c, err := decompressCopy(b.Value); err != nil && r.err == nil {
			r.err = err
		} else {
			rec.Copy = c
		}
	}
	if r.err == nil && (rec.ID == "" || rec.Status == "") {
		r.err = fmt.Errorf("%w: no id or status", ErrMalformed)
	}
	if r.err != nil {
		return message.Record{}, r.err
	}
	return rec, nil
}
