package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/queue"
)

func TestParseRedriveFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		want    redriveOptions
		wantErr string // what a refusal names; "help" for flag.ErrHelp
	}{
		{args: []string{"--stack", "pushfn"}, want: redriveOptions{stack: "pushfn", queueName: defaultQueue}},
		{args: []string{"--queue-url", "https://q", "--rate", "50"}, want: redriveOptions{queueURL: "https://q", queueName: defaultQueue, rate: 50}},
		{args: []string{"--local"}, want: redriveOptions{local: true, queueName: defaultQueue}},
		{args: []string{"--local", "--queue", "mine", "--max", "3"}, want: redriveOptions{local: true, queueName: "mine", max: 3}},
		{args: nil, wantErr: "exactly one of --stack, --queue-url and --local"},
		{args: []string{"--stack", "s", "--local"}, wantErr: "exactly one"},
		{args: []string{"--queue", "mine"}, wantErr: "exactly one"},
		{args: []string{"--stack", "s", "--queue", "mine"}, wantErr: "--queue names a local run's queue"},
		{args: []string{"--local", "--queue", ""}, wantErr: "--queue is empty"},
		{args: []string{"--local", "--max", "-1"}, wantErr: "--max -1"},
		{args: []string{"--stack", "s", "--rate", "501"}, wantErr: "--rate 501"},
		{args: []string{"--local", "extra"}, wantErr: `unexpected argument "extra"`},
		{args: []string{"-h"}, wantErr: "help"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			got, err := parseRedriveFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "help":
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("error %v, want flag.ErrHelp", err)
				}
			case tt.wantErr != "":
				if !errors.Is(err, errRedriveUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want a usage error naming %q", err, tt.wantErr)
				}
			case err != nil || got != tt.want:
				t.Fatalf("parseRedriveFlags = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

const (
	awsQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/pushfn-Queue-X"
	awsQueueARN = "arn:aws:sqs:eu-west-1:123456789012:pushfn-Queue-X"
	awsDLQURL   = "https://sqs.eu-west-1.amazonaws.com/123456789012/pushfn-DeadLetterQueue-Y"
	awsDLQARN   = "arn:aws:sqs:eu-west-1:123456789012:pushfn-DeadLetterQueue-Y"
)

// fakeSQS is a deployed stack's queue and dead-letter queue, whose move task goes through
// states, one per ListMessageMoveTasks. The calls it does not expect fail the test.
type fakeSQS struct {
	t       *testing.T
	visible string // the dead-letter queue's ApproximateNumberOfMessages
	states  []types.ListMessageMoveTasksResultEntry
	started []*sqs.StartMessageMoveTaskInput
	lists   int
}

func (f *fakeSQS) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	switch aws.ToString(in.QueueUrl) {
	case awsQueueURL:
		return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
			"QueueArn": awsQueueARN, "RedrivePolicy": `{"deadLetterTargetArn":"` + awsDLQARN + `","maxReceiveCount":"5"}`,
		}}, nil
	case awsDLQURL:
		return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
			"ApproximateNumberOfMessages": f.visible, "ApproximateNumberOfMessagesNotVisible": "0",
		}}, nil
	}
	return nil, errors.New("no such queue " + aws.ToString(in.QueueUrl))
}

func (f *fakeSQS) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	if aws.ToString(in.QueueName) != "pushfn-DeadLetterQueue-Y" || aws.ToString(in.QueueOwnerAWSAccountId) != "123456789012" {
		return nil, errors.New("no such queue " + aws.ToString(in.QueueName))
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String(awsDLQURL)}, nil
}

func (f *fakeSQS) StartMessageMoveTask(_ context.Context, in *sqs.StartMessageMoveTaskInput, _ ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error) {
	f.started = append(f.started, in)
	return &sqs.StartMessageMoveTaskOutput{TaskHandle: aws.String("handle-1")}, nil
}

func (f *fakeSQS) ListMessageMoveTasks(_ context.Context, _ *sqs.ListMessageMoveTasksInput, _ ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error) {
	f.lists++
	s := f.states[min(f.lists, len(f.states))-1]
	return &sqs.ListMessageMoveTasksOutput{Results: []types.ListMessageMoveTasksResultEntry{s}}, nil
}

func (f *fakeSQS) ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.t.Error("ReceiveMessage called: against AWS, SQS's move task moves the messages")
	return &sqs.ReceiveMessageOutput{}, nil
}

func (f *fakeSQS) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.t.Error("SendMessageBatch called: against AWS, SQS's move task moves the messages")
	return &sqs.SendMessageBatchOutput{}, nil
}

func (f *fakeSQS) DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.t.Error("DeleteMessageBatch called: against AWS, SQS's move task moves the messages")
	return &sqs.DeleteMessageBatchOutput{}, nil
}

var _ redriveSQS = (*fakeSQS)(nil)

// fakeStacks holds one deployed stack, pushfn, with the template's outputs.
type fakeStacks struct{}

func (fakeStacks) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	switch aws.ToString(in.StackName) {
	case "pushfn":
		return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{{StackStatus: cftypes.StackStatusUpdateComplete, Outputs: []cftypes.Output{
			{OutputKey: aws.String("ApiUrl"), OutputValue: aws.String("https://api")},
			{OutputKey: aws.String("QueueUrl"), OutputValue: aws.String(awsQueueURL)},
			{OutputKey: aws.String("DeadLetterQueueUrl"), OutputValue: aws.String(awsDLQURL)},
		}}}}, nil
	case "old":
		return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{{StackStatus: cftypes.StackStatusCreateComplete}}}, nil
	}
	return nil, errStackMissing
}

var errStackMissing = errors.New("ValidationError: Stack with id missing does not exist")

var _ StacksAPI = fakeStacks{}

func moveState(status string, moved, toMove int64) types.ListMessageMoveTasksResultEntry {
	return types.ListMessageMoveTasksResultEntry{Status: aws.String(status), ApproximateNumberOfMessagesMoved: moved,
		ApproximateNumberOfMessagesToMove: aws.Int64(toMove), SourceArn: aws.String(awsDLQARN), DestinationArn: aws.String(awsQueueARN)}
}

// TestRedriveAWS runs pushfn redrive against a deployed stack through fakes of SQS and
// CloudFormation: the stack's QueueUrl output names the queue, its redrive policy the dead-letter
// queue, and SQS's move task goes from that queue's ARN to the queue's, its progress printed
// until it completes; a task that fails is an error. --max against the move task, and --rate
// where there is none (an emulator), are refused before any call.
func TestRedriveAWS(t *testing.T) {
	t.Parallel()
	failed := moveState("FAILED", 4, 10)
	failed.FailureReason = aws.String("AccessDenied")
	tests := []struct {
		name      string
		opts      redriveOptions
		copy      bool // the SQS at hand has no move task (an emulator)
		visible   string
		states    []types.ListMessageMoveTasksResultEntry
		wantOut   []string // lines of the output, in order
		wantErr   error    // matched with errors.Is; a *queue.MoveTaskError is matched with errors.As
		wantRate  int32
		wantTasks int
	}{
		{
			name: "completed", opts: redriveOptions{stack: "pushfn"}, visible: "10", wantTasks: 1,
			states: []types.ListMessageMoveTasksResultEntry{moveState("RUNNING", 0, 10), moveState("RUNNING", 6, 10), moveState("COMPLETED", 10, 10)},
			wantOut: []string{
				"dead-letter queue " + awsDLQURL + ": 10 messages, 0 in flight",
				"starting SQS's message move task to " + awsQueueURL,
				"RUNNING: moved 0 of 10", "RUNNING: moved 6 of 10", "COMPLETED: moved 10 of 10",
				"moved 10 to " + awsQueueURL,
			},
		},
		{
			name: "by queue URL at a rate", opts: redriveOptions{queueURL: awsQueueURL, rate: 20}, visible: "3", wantTasks: 1, wantRate: 20,
			states:  []types.ListMessageMoveTasksResultEntry{moveState("COMPLETED", 3, 3)},
			wantOut: []string{"moved 3 to " + awsQueueURL},
		},
		{
			name: "failed", opts: redriveOptions{stack: "pushfn"}, visible: "10", wantTasks: 1,
			states:  []types.ListMessageMoveTasksResultEntry{moveState("RUNNING", 4, 10), failed},
			wantOut: []string{"RUNNING: moved 4 of 10", "FAILED: moved 4 of 10"},
			wantErr: &queue.MoveTaskError{},
		},
		{
			name: "empty dead-letter queue", opts: redriveOptions{stack: "pushfn"}, visible: "0",
			wantOut: []string{"dead-letter queue " + awsDLQURL + ": 0 messages, 0 in flight", "moved 0 to " + awsQueueURL},
		},
		{name: "--max", opts: redriveOptions{stack: "pushfn", max: 5}, visible: "10", wantErr: errRedriveUsage},
		{name: "--rate without a move task", opts: redriveOptions{queueURL: awsQueueURL, rate: 5}, copy: true, visible: "10", wantErr: errRedriveUsage},
		{name: "no such stack", opts: redriveOptions{stack: "missing"}, wantErr: errStackMissing},
		{name: "stack without the output", opts: redriveOptions{stack: "old"}, wantErr: errNoOutput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeSQS{t: t, visible: tt.visible, states: tt.states}
			var out bytes.Buffer
			err := redriver{sqs: api, stacks: fakeStacks{}, out: &out, copy: tt.copy}.run(context.Background(), tt.opts)
			var te *queue.MoveTaskError
			switch {
			case errors.As(tt.wantErr, &te):
				if !errors.As(err, &te) || te.Reason != "AccessDenied" || te.Task.Moved != 4 {
					t.Fatalf("error %v, want the failed task's MoveTaskError", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("redrive: %v\n%s", err, out.String())
			}
			if !inOrder(out.String(), tt.wantOut) {
				t.Errorf("output:\n%s\nwant these lines in order:\n%s", out.String(), strings.Join(tt.wantOut, "\n"))
			}
			if len(api.started) != tt.wantTasks {
				t.Fatalf("%d move tasks started, want %d", len(api.started), tt.wantTasks)
			}
			for _, in := range api.started {
				if aws.ToString(in.SourceArn) != awsDLQARN || aws.ToString(in.DestinationArn) != awsQueueARN {
					t.Errorf("move task from %s to %s, want from %s to %s", aws.ToString(in.SourceArn), aws.ToString(in.DestinationArn), awsDLQARN, awsQueueARN)
				}
				if got := aws.ToInt32(in.MaxNumberOfMessagesPerSecond); got != tt.wantRate {
					t.Errorf("MaxNumberOfMessagesPerSecond %d, want %d", got, tt.wantRate)
				}
			}
		})
	}
}

// inOrder reports whether out has each of lines as a whole line, in that order.
func inOrder(out string, lines []string) bool {
	got := strings.Split(out, "\n")
	i := 0
	for _, want := range lines {
		for i < len(got) && got[i] != want {
			i++
		}
		if i == len(got) {
			return false
		}
		i++
	}
	return true
}
