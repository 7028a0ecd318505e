package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueuesAPI is the part of the SQS client CreateQueues calls; *sqs.Client has it.
type QueuesAPI interface {
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ QueuesAPI = (*sqs.Client)(nil)

// DLQSuffix ends the name of a queue's dead-letter queue.
const DLQSuffix = "-dlq"

// dlqRetention keeps dead letters as long as SQS allows (14 days), for an operator to look at.
const dlqRetention = 14 * 24 * time.Hour

// CreateQueues creates the queue name and its dead-letter queue name+DLQSuffix, to which SQS
// moves a message received more than maxReceiveCount times (1 to 1,000). visibilityTimeout (whole
// seconds, at most 12 hours) is the queue's default. It returns both URLs. Queues that exist with
// the same settings are fine, so it can run on every start; SQS refuses one with other settings.
func CreateQueues(ctx context.Context, api QueuesAPI, name string, maxReceiveCount int, visibilityTimeout time.Duration) (queueURL, dlqURL string, err error) {
	if maxReceiveCount < 1 || maxReceiveCount > 1000 {
		return "", "", fmt.Errorf("create queue %s: maxReceiveCount %d is outside 1 to 1000", name, maxReceiveCount)
	}
	if visibilityTimeout < 0 || visibilityTimeout > 12*time.Hour || visibilityTimeout%time.Second != 0 {
		return "", "", fmt.Errorf("create queue %s: visibility timeout %v is not whole seconds from 0 to 12h", name, visibilityTimeout)
	}
	dlqName := name + DLQSuffix
	dlq, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(dlqName),
		Attributes: map[string]string{
			string(types.QueueAttributeNameMessageRetentionPeriod): seconds(dlqRetention),
		},
	})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", dlqName, err)
	}
	dlqURL = aws.ToString(dlq.QueueUrl)
	attrs, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(dlqURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("get ARN of queue %s: %w", dlqName, err)
	}
	arn := attrs.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", "", fmt.Errorf("get ARN of queue %s: no QueueArn in the answer", dlqName)
	}
	policy, err := json.Marshal(struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}{arn, maxReceiveCount})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	q, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(name),
		Attributes: map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout): seconds(visibilityTimeout),
			string(types.QueueAttributeNameRedrivePolicy):     string(policy),
		},
	})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(q.QueueUrl), dlqURL, nil
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
