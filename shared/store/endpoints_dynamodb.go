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

	"github.com/pushfn/pushfn/shared/endpoint"
)

var _ Endpoints = (*DynamoDBEndpoints)(nil)

// EndpointsAPI is the part of the DynamoDB client that DynamoDBEndpoints calls; *dynamodb.Client
// has it.
type EndpointsAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ EndpointsAPI = (*dynamodb.Client)(nil)

// DynamoDBEndpoints is the endpoint store kept in pushfn's table (see CreateTable): one item per
// endpoint, with the keys of the gsi1 (by tenant) and gsi2 (every endpoint) indexes. Its items
// carry no ttl: endpoints stay until deleted. It is safe for concurrent use.
type DynamoDBEndpoints struct {
	api   EndpointsAPI
	table string
}

// NewDynamoDBEndpoints returns the endpoint store kept in table.
func NewDynamoDBEndpoints(api EndpointsAPI, table string) *DynamoDBEndpoints {
	return &DynamoDBEndpoints{api: api, table: table}
}

// Endpoint item attributes, beside id, created_at and updated_at (the README's data model).
const (
	attrTenantID       = "tenant_id"
	attrURL            = "url"
	attrDescription    = "description"
	attrHeaders        = "headers"
	attrEventTypes     = "event_types"
	attrDisabled       = "disabled"
	attrDisabledReason = "disabled_reason"
	attrDisabledAt     = "disabled_at"
	attrFailingSince   = "failing_since"
	attrRatePerSecond  = "rate_limit_per_second"
	attrMetadata       = "metadata"
	attrSecret         = "secret"           // the current secret, sealed
	attrPrevious       = "previous_secrets" // list of {secret, until}
	attrVersion        = "version"
	attrWriteToken     = "write_token"
	attrGSI1PK         = "gsi1pk"
	attrGSI1SK         = "gsi1sk"
	attrGSI2PK         = "gsi2pk"
	attrGSI2SK         = "gsi2sk"
)

// CreateEndpoint implements Endpoints.
func (d *DynamoDBEndpoints) CreateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error) {
	if err := ctx.Err(); err != nil {
		return endpoint.Record{}, fmt.Errorf("create endpoint %s: %w", rec.ID, err)
	}
	rec.Version, rec.WriteToken = 1, newWriteToken()
	_, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(d.table),
		Item:                                marshalEndpoint(rec),
		ConditionExpression:                 aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames:            map[string]string{"#id": attrID},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		if old, ok := conditionEndpoint(err); ok && old.WriteToken == rec.WriteToken {
			return old, nil // this create, applied before its answer was lost
		}
		return endpoint.Record{}, d.fail("create endpoint", rec.ID, err, ErrEndpointExists)
	}
	return rec, nil
}

// GetEndpoint implements Endpoints. It reads with strong consistency.
func (d *DynamoDBEndpoints) GetEndpoint(ctx context.Context, id string) (endpoint.Record, error) {
	if err := ctx.Err(); err != nil {
		return endpoint.Record{}, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: key(id), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return endpoint.Record{}, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	if out.Item == nil {
		return endpoint.Record{}, fmt.Errorf("get endpoint %s: %w", id, ErrEndpointNotFound)
	}
	rec, err := unmarshalEndpoint(out.Item)
	if err != nil {
		return endpoint.Record{}, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	return rec, nil
}

// UpdateEndpoint implements Endpoints.
func (d *DynamoDBEndpoints) UpdateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error) {
	if err := ctx.Err(); err != nil {
		return endpoint.Record{}, fmt.Errorf("update endpoint %s: %w", rec.ID, err)
	}
	base := rec.Version
	rec.Version, rec.WriteToken = base+1, newWriteToken()
	_, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(d.table),
		Item:                                marshalEndpoint(rec),
		ConditionExpression:                 aws.String("#version = :version"),
		ExpressionAttributeNames:            map[string]string{"#version": attrVersion},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":version": num(int64(base))},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		if old, ok := conditionEndpoint(err); ok && old.WriteToken == rec.WriteToken {
			return old, nil // this update, applied before its answer was lost
		}
		return endpoint.Record{}, d.fail("update endpoint", rec.ID, err, ErrVersion)
	}
	return rec, nil
}

// DeleteEndpoint implements Endpoints. A delete whose answer was lost is retried by the SDK,
// finds the item gone and so succeeds, as it should.
func (d *DynamoDBEndpoints) DeleteEndpoint(ctx context.Context, id string, version int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	_, err := d.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 key(id),
		ConditionExpression:                 aws.String("#version = :version"),
		ExpressionAttributeNames:            map[string]string{"#version": attrVersion},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":version": num(int64(version))},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	if err = d.fail("delete endpoint", id, err, ErrVersion); errors.Is(err, ErrEndpointNotFound) {
		return nil
	}
	return err
}

// ListEndpoints implements Endpoints: one Query of gsi1 (a tenant) or gsi2 (every endpoint),
// more only when DynamoDB's page ends early.
func (d *DynamoDBEndpoints) ListEndpoints(ctx context.Context, q EndpointQuery) (EndpointPage, error) {
	if err := ctx.Err(); err != nil {
		return EndpointPage{}, fmt.Errorf("list endpoints: %w", err)
	}
	index, pk := q.partition()
	after, err := decodeCursor(q.Cursor, pk)
	if err != nil {
		return EndpointPage{}, fmt.Errorf("list endpoints: %w", err)
	}
	pkAttr, skAttr := attrGSI2PK, attrGSI2SK
	if index == indexByTenant {
		pkAttr, skAttr = attrGSI1PK, attrGSI1SK
	}
	var start map[string]types.AttributeValue
	if after != "" {
		start = map[string]types.AttributeValue{attrID: str(after), pkAttr: str(pk), skAttr: str(after)}
	}
	limit := q.limit()
	var recs []endpoint.Record
	// One more than the page, so that a cursor is given only when another page exists.
	for len(recs) <= limit {
		out, err := d.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(d.table),
			IndexName:                 aws.String(index),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": pkAttr},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
			ExclusiveStartKey:         start,
			Limit:                     aws.Int32(int32(limit + 1 - len(recs))),
		})
		if err != nil {
			return EndpointPage{}, fmt.Errorf("list endpoints (%s): %w", index, err)
		}
		for _, item := range out.Items {
			rec, err := unmarshalEndpoint(item)
			if err != nil {
				return EndpointPage{}, fmt.Errorf("list endpoints (%s): %w", index, err)
			}
			recs = append(recs, rec)
		}
		if out.LastEvaluatedKey == nil {
			break
		}
		start = out.LastEvaluatedKey
	}
	page := EndpointPage{Endpoints: recs}
	if len(recs) > limit {
		page.Endpoints = recs[:limit]
		page.Next = encodeCursor(pk, recs[limit-1].ID)
	}
	return page, nil
}

// MarkEndpointFailing implements Endpoints.
func (d *DynamoDBEndpoints) MarkEndpointFailing(ctx context.Context, id string, since time.Time) (endpoint.Record, bool, error) {
	return d.health(ctx, "mark endpoint failing", id, healthWrite{
		set:       "#fs = :fs",
		condition: "attribute_not_exists(#fs)",
		names:     map[string]string{"#fs": attrFailingSince},
		values:    map[string]types.AttributeValue{":fs": timeValue(since)},
	})
}

// MarkEndpointHealthy implements Endpoints.
func (d *DynamoDBEndpoints) MarkEndpointHealthy(ctx context.Context, id string) (endpoint.Record, bool, error) {
	return d.health(ctx, "mark endpoint healthy", id, healthWrite{
		remove:    "#fs",
		condition: "attribute_exists(#fs)",
		names:     map[string]string{"#fs": attrFailingSince},
	})
}

// DisableFailingEndpoint implements Endpoints.
func (d *DynamoDBEndpoints) DisableFailingEndpoint(ctx context.Context, id string, failingSince, at time.Time) (endpoint.Record, bool, error) {
	return d.health(ctx, "disable failing endpoint", id, healthWrite{
		set:       "#dis = :true, #reason = :reason, #dat = :at, #updated = :at",
		condition: "#dis = :false AND #fs = :fs",
		names: map[string]string{"#dis": attrDisabled, "#reason": attrDisabledReason, "#dat": attrDisabledAt,
			"#updated": attrUpdatedAt, "#fs": attrFailingSince},
		values: map[string]types.AttributeValue{
			":true": &types.AttributeValueMemberBOOL{Value: true}, ":false": &types.AttributeValueMemberBOOL{Value: false},
			":reason": str(endpoint.ReasonFailing), ":at": timeValue(at), ":fs": timeValue(failingSince),
		},
	})
}

// healthWrite is one health write's change and the condition it applies under, beside what
// every health write does: raise the version, name itself with a new write token, and apply
// only to an endpoint that exists.
type healthWrite struct {
	set, remove, condition string
	names                  map[string]string
	values                 map[string]types.AttributeValue
}

// health makes the write w: one conditional UpdateItem.
func (d *DynamoDBEndpoints) health(ctx context.Context, op, id string, w healthWrite) (endpoint.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return endpoint.Record{}, false, fmt.Errorf("%s %s: %w", op, id, err)
	}
	token := newWriteToken()
	names := map[string]string{"#id": attrID, "#version": attrVersion, "#token": attrWriteToken}
	for k, v := range w.names {
		names[k] = v
	}
	values := map[string]types.AttributeValue{":one": num(1), ":token": str(token)}
	for k, v := range w.values {
		values[k] = v
	}
	update := "SET #token = :token"
	if w.set != "" {
		update += ", " + w.set
	}
	if w.remove != "" {
		update += " REMOVE " + w.remove
	}
	update += " ADD #version :one"
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 key(id),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String("attribute_exists(#id) AND " + w.condition),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		old, ok := conditionEndpoint(err)
		switch {
		case ok && old.WriteToken == token:
			return old, true, nil // this write, applied before its answer was lost
		case ok:
			return old, false, nil // the endpoint is not as the write expects: it stays as it is
		}
		return endpoint.Record{}, false, d.fail(op, id, err, ErrVersion)
	}
	rec, err := unmarshalEndpoint(out.Attributes)
	if err != nil {
		return endpoint.Record{}, false, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return rec, true, nil
}

// fail turns the error of a conditional write into the store's: a failed condition with no
// item means the endpoint is missing; with one, conflict. Any other error is wrapped as it is.
func (d *DynamoDBEndpoints) fail(op, id string, err, conflict error) error {
	var ccf *types.ConditionalCheckFailedException
	switch {
	case !errors.As(err, &ccf):
		return fmt.Errorf("%s %s: %w", op, id, err)
	case len(ccf.Item) == 0:
		return fmt.Errorf("%s %s: %w", op, id, ErrEndpointNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, id, conflict)
}

// conditionEndpoint is the endpoint a failed condition returned with err, when err is one.
func conditionEndpoint(err error) (endpoint.Record, bool) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || len(ccf.Item) == 0 {
		return endpoint.Record{}, false
	}
	rec, uerr := unmarshalEndpoint(ccf.Item)
	return rec, uerr == nil
}

func stringMap(m map[string]string) types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = str(v)
	}
	return &types.AttributeValueMemberM{Value: out}
}

// marshalEndpoint is the item of rec, with its index keys. Empty values are left out.
func marshalEndpoint(rec endpoint.Record) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrID:         str(rec.ID),
		attrURL:        str(rec.URL),
		attrDisabled:   &types.AttributeValueMemberBOOL{Value: rec.Disabled},
		attrSecret:     str(string(rec.Secret)),
		attrVersion:    num(int64(rec.Version)),
		attrWriteToken: str(rec.WriteToken),
		attrCreatedAt:  timeValue(rec.CreatedAt),
		attrUpdatedAt:  timeValue(rec.UpdatedAt),
		attrGSI1PK:     str(tenantPrefix + rec.TenantID),
		attrGSI1SK:     str(rec.ID),
		attrGSI2PK:     str(endpointsPartKey),
		attrGSI2SK:     str(rec.ID),
	}
	putStr := func(name, v string) {
		if v != "" {
			item[name] = str(v)
		}
	}
	putStr(attrTenantID, rec.TenantID)
	putStr(attrDescription, rec.Description)
	putStr(attrDisabledReason, rec.DisabledReason)
	if rec.DisabledAt != nil {
		item[attrDisabledAt] = timeValue(*rec.DisabledAt)
	}
	if rec.FailingSince != nil {
		item[attrFailingSince] = timeValue(*rec.FailingSince)
	}
	if len(rec.Headers) > 0 {
		item[attrHeaders] = stringMap(rec.Headers)
	}
	if len(rec.Metadata) > 0 {
		item[attrMetadata] = stringMap(rec.Metadata)
	}
	if len(rec.EventTypes) > 0 {
		l := make([]types.AttributeValue, len(rec.EventTypes))
		for i, e := range rec.EventTypes {
			l[i] = str(e)
		}
		item[attrEventTypes] = &types.AttributeValueMemberL{Value: l}
	}
	if rec.RateLimit != nil {
		item[attrRatePerSecond] = num(int64(rec.RateLimit.PerSecond))
	}
	if len(rec.Previous) > 0 {
		l := make([]types.AttributeValue, len(rec.Previous))
		for i, p := range rec.Previous {
			l[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"secret": str(string(p.Sealed)), "until": timeValue(p.Until),
			}}
		}
		item[attrPrevious] = &types.AttributeValueMemberL{Value: l}
	}
	return item
}

func (r *itemReader) stringMap(name string) map[string]string {
	v, ok := r.item[name]
	if !ok {
		return nil
	}
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		r.fail(name, "a map")
		return nil
	}
	out := make(map[string]string, len(m.Value))
	for k, e := range m.Value {
		s, ok := e.(*types.AttributeValueMemberS)
		if !ok {
			r.fail(name+"."+k, "a string")
			return nil
		}
		out[k] = s.Value
	}
	return out
}

func (r *itemReader) list(name string) []types.AttributeValue {
	v, ok := r.item[name]
	if !ok {
		return nil
	}
	l, ok := v.(*types.AttributeValueMemberL)
	if !ok {
		r.fail(name, "a list")
		return nil
	}
	return l.Value
}

// unmarshalEndpoint is the record of an item written by marshalEndpoint.
func unmarshalEndpoint(item map[string]types.AttributeValue) (endpoint.Record, error) {
	r := &itemReader{item: item}
	rec := endpoint.Record{
		Endpoint: endpoint.Endpoint{
			ID:             r.str(attrID),
			TenantID:       r.str(attrTenantID),
			URL:            r.str(attrURL),
			Description:    r.str(attrDescription),
			Headers:        r.stringMap(attrHeaders),
			Disabled:       r.bool(attrDisabled),
			DisabledReason: r.str(attrDisabledReason),
			Metadata:       r.stringMap(attrMetadata),
			CreatedAt:      r.time(attrCreatedAt),
			UpdatedAt:      r.time(attrUpdatedAt),
		},
		Secret:     endpoint.Sealed(r.str(attrSecret)),
		Version:    int(r.num(attrVersion)),
		WriteToken: r.str(attrWriteToken),
	}
	if _, ok := item[attrDisabledAt]; ok {
		t := r.time(attrDisabledAt)
		rec.DisabledAt = &t
	}
	if _, ok := item[attrFailingSince]; ok {
		t := r.time(attrFailingSince)
		rec.FailingSince = &t
	}
	if _, ok := item[attrRatePerSecond]; ok {
		rec.RateLimit = &endpoint.RateLimit{PerSecond: int(r.num(attrRatePerSecond))}
	}
	for i, v := range r.list(attrEventTypes) {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			r.fail(attrEventTypes+"["+strconv.Itoa(i)+"]", "a string")
			break
		}
		rec.EventTypes = append(rec.EventTypes, s.Value)
	}
	for i, v := range r.list(attrPrevious) {
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			r.fail(attrPrevious+"["+strconv.Itoa(i)+"]", "a map")
			break
		}
		pr := &itemReader{item: m.Value}
		p := endpoint.PreviousSecret{Sealed: endpoint.Sealed(pr.str("secret")), Until: pr.time("until")}
		if pr.err != nil && r.err == nil {
			r.err = pr.err
		}
		rec.Previous = append(rec.Previous, p)
	}
	if r.err == nil && (!endpoint.ValidID(rec.ID) || rec.Version < 1 || rec.Secret == "") {
		r.err = fmt.Errorf("%w: no endpoint id, version or secret", ErrMalformed)
	}
	if r.err != nil {
		return endpoint.Record{}, r.err
	}
	return rec, nil
}
