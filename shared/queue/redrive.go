package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// ErrNoRedrivePolicy: the queue has no dead-letter queue to redrive from.
var ErrNoRedrivePolicy = errors.New("the queue has no redrive policy (no dead-letter queue)")

// DeadLetter is a queue and the dead-letter queue its redrive policy names.
type DeadLetter struct {
	QueueARN string
	DLQARN   string
	DLQURL   string
	// Visible and InFlight are the dead-letter queue's approximate counts of messages when it
	// was looked up: ready to be received, and received by someone and not yet deleted.
	Visible, InFlight int
}

// AttributesAPI is the part of the SQS client DeadLetterQueue calls; *sqs.Client has it.
type AttributesAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
}

var _ AttributesAPI = (*sqs.Client)(nil)

// DeadLetterQueue finds the dead-letter queue of the queue at queueURL from its redrive policy,
// with its message counts. A queue without a redrive policy is ErrNoRedrivePolicy.
func DeadLetterQueue(ctx context.Context, api AttributesAPI, queueURL string) (DeadLetter, error) {
	attrs, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn, types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read the attributes of queue %s: %w", queueURL, err)
	}
	d := DeadLetter{QueueARN: attrs.Attributes[string(types.QueueAttributeNameQueueArn)]}
	if d.QueueARN == "" {
		return DeadLetter{}, fmt.Errorf("read the attributes of queue %s: no QueueArn in the answer", queueURL)
	}
	raw := attrs.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
	if raw == "" {
		return DeadLetter{}, fmt.Errorf("queue %s: %w", queueURL, ErrNoRedrivePolicy)
	}
	var policy struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(raw), &policy); err != nil {
		return DeadLetter{}, fmt.Errorf("queue %s: RedrivePolicy %q is not JSON: %w", queueURL, raw, err)
	}
	if policy.DeadLetterTargetArn == "" {
		return DeadLetter{}, fmt.Errorf("queue %s: RedrivePolicy %q names no deadLetterTargetArn: %w", queueURL, raw, ErrNoRedrivePolicy)
	}
	d.DLQARN = policy.DeadLetterTargetArn
	account, name, err := splitQueueARN(d.DLQARN)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("queue %s: RedrivePolicy deadLetterTargetArn: %w", queueURL, err)
	}
	u, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name), QueueOwnerAWSAccountId: aws.String(account)})
	if err != nil {
		return DeadLetter{}, fmt.Errorf("find dead-letter queue %s: %w", d.DLQARN, err)
	}
	d.DLQURL = aws.ToString(u.QueueUrl)
	counts, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(d.DLQURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return DeadLetter{}, fmt.Errorf("count the messages of dead-letter queue %s: %w", d.DLQURL, err)
	}
	for _, c := range []struct {
		name types.QueueAttributeName
		n    *int
	}{
		{types.QueueAttributeNameApproximateNumberOfMessages, &d.Visible},
		{types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, &d.InFlight},
	} {
		v := counts.Attributes[string(c.name)]
		if *c.n, err = strconv.Atoi(v); err != nil {
			return DeadLetter{}, fmt.Errorf("count the messages of dead-letter queue %s: %s %q is not a number", d.DLQURL, c.name, v)
		}
	}
	return d, nil
}

// splitQueueARN returns the account and the queue name of an SQS queue's ARN,
// arn:<partition>:sqs:<region>:<account>:<name>.
func splitQueueARN(arn string) (account, name string, err error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[4] == "" || parts[5] == "" {
		return "", "", fmt.Errorf("%q is not an SQS queue ARN (arn:aws:sqs:region:account:name)", arn)
	}
	return parts[4], parts[5], nil
}

// MoveAPI is the part of the SQS client Move calls; *sqs.Client has it.
type MoveAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ MoveAPI = (*sqs.Client)(nil)

// moveHold is how long a message received for a move stays invisible to other receivers: when
// its send fails it is left where it was and comes back after this long.
const moveHold = 30 * time.Second

// Move moves the messages of the queue at srcURL to the queue at dstURL, 10 at a time, until a
// receive finds none or max have moved (max 0: no bound), and returns how many moved. It is what
// SQS's message move task does, for SQS implementations that lack one (the local emulator): a
// message is deleted from srcURL only once dstURL accepted its body, so a failure leaves every
// message in one queue or, when the process dies between the send and the delete, in both (it
// is delivered once all the same: the deliver function's claim lets one copy through).
// progress, when not nil, is called with the count after each batch. Only bodies are moved:
// pushfn's copies carry no attributes.
func Move(ctx context.Context, api MoveAPI, srcURL, dstURL string, max int, progress func(moved int)) (int, error) {
	if max < 0 {
		return 0, fmt.Errorf("move %s to %s: max %d is negative", srcURL, dstURL, max)
	}
	moved := 0
	for max == 0 || moved < max {
		want := int32(10)
		if max > 0 {
			want = int32(min(10, max-moved))
		}
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(srcURL), MaxNumberOfMessages: want, WaitTimeSeconds: 1,
			VisibilityTimeout: int32(moveHold / time.Second),
		})
		if err != nil {
			return moved, fmt.Errorf("receive from %s: %w", srcURL, err)
		}
		if len(out.Messages) == 0 {
			return moved, nil
		}
		n, err := moveBatch(ctx, api, srcURL, dstURL, out.Messages)
		moved += n
		if progress != nil && n > 0 {
			progress(moved)
		}
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// moveBatch sends msgs to dstURL and deletes from srcURL those it accepted; it returns how many
// were both sent and deleted.
func moveBatch(ctx context.Context, api MoveAPI, srcURL, dstURL string, msgs []types.Message) (int, error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: m.Body}
	}
	sent, err := api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(dstURL), Entries: entries})
	if err != nil {
		return 0, fmt.Errorf("send %d messages to %s: %w", len(msgs), dstURL, err)
	}
	var errs []error
	for _, f := range sent.Failed {
		errs = append(errs, fmt.Errorf("send message %s to %s: %s %s (left in %s)",
			messageID(msgs, f.Id), dstURL, aws.ToString(f.Code), aws.ToString(f.Message), srcURL))
	}
	if len(sent.Successful) == 0 {
		return 0, errors.Join(errs...)
	}
	deletes := make([]types.DeleteMessageBatchRequestEntry, 0, len(sent.Successful))
	for _, s := range sent.Successful {
		i, err := strconv.Atoi(aws.ToString(s.Id))
		if err != nil || i < 0 || i >= len(msgs) {
			return 0, fmt.Errorf("send to %s: the answer names entry %q, which was not sent", dstURL, aws.ToString(s.Id))
		}
		deletes = append(deletes, types.DeleteMessageBatchRequestEntry{Id: s.Id, ReceiptHandle: msgs[i].ReceiptHandle})
	}
	deleted, err := api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(srcURL), Entries: deletes})
	if err != nil {
		errs = append(errs, fmt.Errorf("delete %d moved messages from %s (each is now in both queues): %w", len(deletes), srcURL, err))
		return 0, errors.Join(errs...)
	}
	for _, f := range deleted.Failed {
		errs = append(errs, fmt.Errorf("delete moved message %s from %s (it is now in both queues): %s %s",
			messageID(msgs, f.Id), srcURL, aws.ToString(f.Code), aws.ToString(f.Message)))
	}
	return len(deleted.Successful), errors.Join(errs...)
}

// messageID returns the SQS id of the message of batch entry id.
func messageID(msgs []types.Message, id *string) string {
	if i, err := strconv.Atoi(aws.ToString(id)); err == nil && i >= 0 && i < len(msgs) {
		return aws.ToString(msgs[i].MessageId)
	}
	return "entry " + aws.ToString(id)
}

// MoveTaskAPI is the part of the SQS client RunMoveTask calls; *sqs.Client has it.
type MoveTaskAPI interface {
	StartMessageMoveTask(ctx context.Context, in *sqs.StartMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
	ListMessageMoveTasks(ctx context.Context, in *sqs.ListMessageMoveTasksInput, optFns ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error)
}

var _ MoveTaskAPI = (*sqs.Client)(nil)

// MaxMoveRate is the highest MaxNumberOfMessagesPerSecond SQS's message move task accepts.
const MaxMoveRate = 500

// MoveTask is the state of an SQS message move task.
type MoveTask struct {
	Handle string
	Status string // RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED
	Moved  int64
	ToMove int64 // -1 while SQS does not say
}

// MoveTaskError is a move task that ended other than COMPLETED.
type MoveTaskError struct {
	Task   MoveTask
	Reason string // SQS's FailureReason, when it gives one
}

func (e *MoveTaskError) Error() string {
	msg := fmt.Sprintf("message move task %s ended %s after moving %d", e.Task.Handle, e.Task.Status, e.Task.Moved)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// RunMoveTask starts SQS's message move task from the queue sourceARN (a dead-letter queue) to
// destinationARN, at most rate messages a second (0: SQS's own pace), and reads its state every
// poll until it ends. progress, when not nil, is called with each state read. A task that ends
// other than COMPLETED is a *MoveTaskError. SQS runs one task per source queue at a time, so
// the newest task of sourceARN that it lists is the one started here.
func RunMoveTask(ctx context.Context, api MoveTaskAPI, sourceARN, destinationARN string, rate int, poll time.Duration, progress func(MoveTask)) (MoveTask, error) {
	if rate < 0 || rate > MaxMoveRate {
		return MoveTask{}, fmt.Errorf("start a message move task: rate %d is outside 0 to %d messages a second", rate, MaxMoveRate)
	}
	in := &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(sourceARN), DestinationArn: aws.String(destinationARN)}
	if rate > 0 {
		in.MaxNumberOfMessagesPerSecond = aws.Int32(int32(rate))
	}
	started, err := api.StartMessageMoveTask(ctx, in)
	if err != nil {
		return MoveTask{}, fmt.Errorf("start a message move task from %s to %s: %w", sourceARN, destinationARN, err)
	}
	task := MoveTask{Handle: aws.ToString(started.TaskHandle), Status: "RUNNING", ToMove: -1}
	for {
		list, err := api.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(sourceARN), MaxResults: aws.Int32(1)})
		if err != nil {
			return task, fmt.Errorf("read message move task %s: %w", task.Handle, err)
		}
		if len(list.Results) == 0 {
			return task, fmt.Errorf("read message move task %s: SQS lists no task for %s", task.Handle, sourceARN)
		}
		r := list.Results[0]
		if h := aws.ToString(r.TaskHandle); h != "" && task.Handle != "" && h != task.Handle {
			return task, fmt.Errorf("read message move task %s: SQS lists another task, %s, as the newest of %s", task.Handle, h, sourceARN)
		}
		task.Status, task.Moved = aws.ToString(r.Status), r.ApproximateNumberOfMessagesMoved
		if r.ApproximateNumberOfMessagesToMove != nil {
			task.ToMove = *r.ApproximateNumberOfMessagesToMove
		}
		if progress != nil {
			progress(task)
		}
		switch task.Status {
		case "COMPLETED":
			return task, nil
		case "FAILED", "CANCELLED":
			return task, &MoveTaskError{Task: task, Reason: aws.ToString(r.FailureReason)}
		}
		select {
		case <-ctx.Done():
			return task, fmt.Errorf("wait for message move task %s (it goes on in SQS): %w", task.Handle, ctx.Err())
		case <-time.After(poll):
		}
	}
}
