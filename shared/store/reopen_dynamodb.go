package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/message"
)

// reopenTries bounds the writes of a reopen whose record's history is full: each reads the
// record its failed condition returned and writes the trimmed history only if the record is
// still that one.
const reopenTries = 3

// errReopenRaced: the record changed between the writes of a reopen with a full history, every
// time; trying again later will do.
var errReopenRaced = errors.New("record changed while it was reopened")

// Reopen implements Store. It is one conditional write, which appends the last attempt to the
// history within the write; a record whose history is full is written again, from the record the
// failed condition returned, with its history trimmed (a second write, from the 21st reopen on).
func (d *DynamoDB) Reopen(ctx context.Context, id string, r Reopen) (message.Record, error) {
	if err := ctx.Err(); err != nil {
		return message.Record{}, fmt.Errorf("reopen %s: %w", id, err)
	}
	var seen *message.Record
	for try := 1; ; try++ {
		out, err := d.api.UpdateItem(ctx, d.reopenInput(id, r, seen))
		if err == nil {
			return d.written("reopen", id, out.Attributes)
		}
		old, ok := conditionRecord(err)
		switch {
		case !ok:
			return message.Record{}, d.conflict("reopen", id, err, reopenReason)
		case old.Status == message.Accepted && !old.ReopenedAt.IsZero():
			// Reopened before (this reopen, its answer lost, or another) and not claimed since.
			return old, nil
		}
		if reopenReason(old) != nil {
			return message.Record{}, d.conflict("reopen", id, err, reopenReason)
		}
		// Failed or expired with a copy: the history was full, or the record changed since seen.
		if try == reopenTries {
			return message.Record{}, fmt.Errorf("reopen %s: %w", id, errReopenRaced)
		}
		seen = &old
	}
}

// reopenInput is the write of a reopen. Without seen it appends the last attempt to the history
// while the history is not full; with seen, the record as last read, it writes seen's history
// with its last attempt appended and the oldest dropped, only while the record is still seen.
func (d *DynamoDB) reopenInput(id string, r Reopen, seen *message.Record) *dynamodb.UpdateItemInput {
	names := map[string]string{
		"#status": attrStatus, "#attempts": attrAttempts, "#history": attrHistory, "#copy": attrCopy,
		"#last_attempt": attrLastAttempt, "#last_attempt_list": attrLastAttemptList,
		"#lease_token": attrLeaseToken, "#lease_until": attrLeaseUntil, "#finished_by": attrFinishedBy,
		"#reopen_token": attrReopenToken, "#reopened_at": attrReopenedAt, "#updated_at": attrUpdatedAt, "#ttl": attrTTL,
	}
	values := map[string]types.AttributeValue{
		":accepted": str(string(message.Accepted)),
		":zero":     num(0),
		":token":    str(r.Token),
		":now":      timeValue(r.Now),
		":ttl":      num(ttlAt(r.Now, d.ttl).Unix()),
	}
	var cond, history string
	if seen == nil {
		cond = "#status IN (:failed, :expired) AND attribute_exists(#copy) AND " +
			"(attribute_not_exists(#history) OR size(#history) < :max_history)"
		values[":failed"], values[":expired"] = str(string(message.Failed)), str(string(message.Expired))
		values[":max_history"] = num(message.MaxHistory)
		values[":empty"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
		history = "list_append(if_not_exists(#history, :empty), if_not_exists(#last_attempt_list, :empty))"
	} else {
		cond = "#status = :seen_status AND attribute_exists(#copy) AND #updated_at = :seen_updated_at"
		values[":seen_status"], values[":seen_updated_at"] = str(string(seen.Status)), timeValue(seen.UpdatedAt)
		values[":history"] = historyValue(appendHistory(seen.History, seen.LastAttempt))
		history = ":history"
	}
	return &dynamodb.UpdateItemInput{
		TableName:           aws.String(d.table),
		Key:                 key(id),
		ConditionExpression: aws.String(cond),
		UpdateExpression: aws.String("SET #status = :accepted, #attempts = :zero, #history = " + history +
			", #reopen_token = :token, #reopened_at = :now, #updated_at = :now, #ttl = :ttl" +
			" REMOVE #last_attempt, #last_attempt_list, #lease_token, #lease_until, #finished_by"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

func historyValue(h []message.Attempt) types.AttributeValue {
	l := make([]types.AttributeValue, len(h))
	for i, a := range h {
		l[i] = attemptValue(a)
	}
	return &types.AttributeValueMemberL{Value: l}
}
