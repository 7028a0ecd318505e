package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/queue"
)

// deadLetter puts bodies on url (a queue whose visibility timeout is 0: the SDK leaves a zero
// VisibilityTimeout out of ReceiveMessage) and receives them without deleting them until the emulator has moved every one to the dead-letter queue dlq, as SQS does to a
// copy received more than maxReceiveCount times.
func deadLetter(t *testing.T, client *sqs.Client, url, dlq string, bodies []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, b := range bodies {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	for depth(t, client, dlq) < len(bodies) {
		if _, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		}); err != nil {
			t.Fatalf("receive from %s: %v", url, err)
		}
	}
}

// depth is the approximate number of visible messages of url.
func depth(t *testing.T, client *sqs.Client, url string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIntegrationRedriveMove dead-letters 13 messages through the emulator's own redrive (received
// more than maxReceiveCount 2 times), finds the dead-letter queue from the queue's redrive policy,
// moves 5 (--max), then the rest, and finds each message on the queue once and none left in the
// dead-letter queue; a move of an empty dead-letter queue moves 0.
func TestIntegrationRedriveMove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := awstest.SQS(t)
	url, dlq := awstest.Queues(t, client, 2, 0)
	var want []string
	for i := range 13 {
		want = append(want, fmt.Sprintf(`{"n":%d}`, i))
	}
	deadLetter(t, client, url, dlq, want)

	dl, err := queue.DeadLetterQueue(ctx, client, url)
	if err != nil {
		t.Fatal(err)
	}
	if dl.DLQURL != dlq || dl.Visible != len(want) || dl.QueueARN == "" || dl.DLQARN == "" {
		t.Fatalf("DeadLetterQueue = %+v, want %s with %d messages", dl, dlq, len(want))
	}
	moved, err := queue.Move(ctx, client, dl.DLQURL, url, 5, nil)
	if err != nil || moved != 5 {
		t.Fatalf("Move at most 5 = %d, %v", moved, err)
	}
	moved, err = queue.Move(ctx, client, dl.DLQURL, url, 0, nil)
	if err != nil || moved != len(want)-5 {
		t.Fatalf("Move the rest = %d, %v; want %d", moved, err, len(want)-5)
	}
	got := receive(t, client, url, len(want))
	if n := depth(t, client, url); n != 0 {
		t.Errorf("%d more messages on the queue than were dead-lettered", n)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the queue holds %q, want each of %q once", got, want)
	}
	if n := depth(t, client, dlq); n != 0 {
		t.Errorf("%d messages left in the dead-letter queue", n)
	}
	if moved, err := queue.Move(ctx, client, dl.DLQURL, url, 0, nil); err != nil || moved != 0 {
		t.Errorf("Move of an empty dead-letter queue = %d, %v; want 0", moved, err)
	}
}

// TestIntegrationDeadLetterQueueNoPolicy: a queue without a redrive policy has no dead-letter queue.
func TestIntegrationDeadLetterQueueNoPolicy(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	_, dlq := awstest.Queues(t, client, 2, 30*time.Second)
	if _, err := queue.DeadLetterQueue(context.Background(), client, dlq); !errors.Is(err, queue.ErrNoRedrivePolicy) {
		t.Fatalf("DeadLetterQueue of a queue without a redrive policy: %v, want ErrNoRedrivePolicy", err)
	}
}
