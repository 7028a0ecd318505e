package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/queue"
)

// receive takes up to want messages off url, deleting them, in at most 30 polls.
func receive(t *testing.T, client *sqs.Client, url string, want int) []string {
	t.Helper()
	var bodies []string
	for poll := 0; poll < 30 && len(bodies) < want; poll++ {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{
				QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
	return bodies
}

func TestIntegrationSendReceive(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	url, _ := awstest.Queues(t, client, 5, 30*time.Second)
	in := entries(25, 64)
	wantAllNil(t, queue.NewProducer(client, url).Send(context.Background(), in), len(in))
	got := receive(t, client, url, len(in))
	var want []string
	for _, e := range in {
		want = append(want, e.Body)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("received %d bodies, want the %d sent, each once", len(got), len(want))
	}
}

// TestIntegrationSendLarge sends bodies whose sum is over one request's limit, which the
// emulator refuses (BatchRequestTooLong) unless the producer splits them.
func TestIntegrationSendLarge(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	url, _ := awstest.Queues(t, client, 5, 30*time.Second)
	in := entries(3, 400<<10)
	wantAllNil(t, queue.NewProducer(client, url).Send(context.Background(), in), len(in))
	if got := receive(t, client, url, len(in)); len(got) != len(in) {
		t.Errorf("received %d messages, want %d", len(got), len(in))
	}
}

func TestIntegrationSenderFault(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	url, _ := awstest.Queues(t, client, 5, 30*time.Second)
	errs := queue.NewProducer(client, url).Send(context.Background(), []queue.Entry{{Body: "fine"}, {Body: "nul \x00 byte"}})
	if errs[0] != nil {
		t.Errorf("entry 0: %v", errs[0])
	}
	var qe *queue.Error
	if !errors.Is(errs[1], queue.ErrPermanent) || !errors.As(errs[1], &qe) || qe.Code == "" {
		t.Errorf("entry 1: %v, want a permanent error with SQS's code", errs[1])
	}
}

func TestIntegrationDelay(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	url, _ := awstest.Queues(t, client, 5, 30*time.Second)
	in := []queue.Entry{{Body: "later", DelaySeconds: queue.MaxDelaySeconds}, {Body: "now"}}
	wantAllNil(t, queue.NewProducer(client, url).Send(context.Background(), in), len(in))
	attrs, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)]; n != "1" {
		t.Errorf("delayed messages = %q, want 1", n)
	}
	if got := receive(t, client, url, 1); !slices.Equal(got, []string{"now"}) {
		t.Errorf("received %q, want the undelayed message", got)
	}
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 0 {
		t.Errorf("received %q while it is delayed", aws.ToString(out.Messages[0].Body))
	}
}

func TestIntegrationRedrive(t *testing.T) {
	t.Parallel()
	const maxReceiveCount = 2
	client := awstest.SQS(t)
	// Visibility 0: a message received and not deleted is visible again at once. (The SDK leaves
	// a zero VisibilityTimeout out of ReceiveMessage, so the queue's default must be 0.)
	url, dlq := awstest.Queues(t, client, maxReceiveCount, 0)
	wantAllNil(t, queue.NewProducer(client, url).Send(context.Background(), []queue.Entry{{Body: "poison"}}), 1)
	// Receive without deleting, as a worker that crashes would, until the queue has nothing more
	// to give.
	receives := 0
	for range 10 {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		receives += len(out.Messages)
	}
	if receives != maxReceiveCount {
		t.Errorf("received %d times from the queue, want %d", receives, maxReceiveCount)
	}
	if got := receive(t, client, dlq, 1); !slices.Equal(got, []string{"poison"}) {
		t.Errorf("dead-letter queue holds %q, want the poison message", got)
	}
}

func TestIntegrationCreateQueues(t *testing.T) {
	t.Parallel()
	client := awstest.SQS(t)
	name := awstest.Name(t)
	url, dlq, err := queue.CreateQueues(context.Background(), client, name, 13, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dropQueues(t, client, url, dlq)
	if !strings.HasSuffix(url, "/"+name) || !strings.HasSuffix(dlq, "/"+name+queue.DLQSuffix) {
		t.Errorf("URLs %q and %q do not name %s and its DLQ", url, dlq, name)
	}
	url2, dlq2, err := queue.CreateQueues(context.Background(), client, name, 13, 90*time.Second)
	if err != nil || url2 != url || dlq2 != dlq {
		t.Errorf("second CreateQueues = %q, %q, %v; want the same URLs", url2, dlq2, err)
	}
	attrs, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	dlqAttrs, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(dlq), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &policy); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", attrs.Attributes["RedrivePolicy"], err)
	}
	if policy.DeadLetterTargetArn != dlqAttrs.Attributes["QueueArn"] || strings.Trim(string(policy.MaxReceiveCount), `"`) != "13" {
		t.Errorf("RedrivePolicy = %s, want the DLQ %s after 13 receives", attrs.Attributes["RedrivePolicy"], dlqAttrs.Attributes["QueueArn"])
	}
	if v := attrs.Attributes["VisibilityTimeout"]; v != "90" {
		t.Errorf("VisibilityTimeout = %q, want 90", v)
	}
}

func TestCreateQueuesRefusesBadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		maxReceive int
		visibility time.Duration
	}{
		{0, time.Minute}, {1001, time.Minute}, {5, -time.Second}, {5, 1500 * time.Millisecond}, {5, 13 * time.Hour},
	} {
		t.Run(fmt.Sprintf("%d_%v", tc.maxReceive, tc.visibility), func(t *testing.T) {
			t.Parallel()
			// A nil API: the settings must be refused before any call.
			if _, _, err := queue.CreateQueues(context.Background(), nil, "q", tc.maxReceive, tc.visibility); err == nil {
				t.Error("CreateQueues accepted the settings")
			}
		})
	}
}

// dropQueues deletes the queues when the test ends, so the shared emulator does not fill up.
func dropQueues(t *testing.T, client *sqs.Client, urls ...string) {
	t.Cleanup(func() {
		for _, url := range urls {
			if _, err := client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
				t.Logf("delete queue %s: %v", url, err)
			}
		}
	})
}
