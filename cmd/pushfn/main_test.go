package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/queue"
)

func TestRunDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		isHelp  bool
	}{
		{name: "no command", args: nil, wantErr: true, isHelp: true},
		{name: "help", args: []string{"help"}},
		{name: "unknown", args: []string{"nope"}, wantErr: true},
		{name: "emulators without action", args: []string{"emulators"}, wantErr: true, isHelp: true},
		{name: "emulators bad action", args: []string{"emulators", "sideways"}, wantErr: true},
		{name: "setup with arguments", args: []string{"setup", "extra"}, wantErr: true, isHelp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tt.args)
			if (err != nil) != tt.wantErr || errors.Is(err, flag.ErrHelp) != tt.isHelp {
				t.Errorf("run(%q) = %v, want error %v (help %v)", tt.args, err, tt.wantErr, tt.isHelp)
			}
		})
	}
}

func TestCommandNamesUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] || c.run == nil || c.summary == "" {
			t.Errorf("command %q: duplicate, or without a function or summary", c.name)
		}
		seen[c.name] = true
	}
}

// TestIntegrationSetup creates the table and queues twice (the second run changes nothing) and
// checks the queue got the template's redrive policy.
func TestIntegrationSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqsClient, ddbClient := awstest.SQS(t), awstest.DynamoDB(t)
	name := awstest.Name(t)
	t.Cleanup(func() {
		_, _ = ddbClient.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		for _, q := range []string{name, name + queue.DLQSuffix} {
			if out, err := sqsClient.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q)}); err == nil {
				_, _ = sqsClient.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
			}
		}
	})
	first, err := runSetup(ctx, os.Getenv, "", name, name, io.Discard)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	second, err := runSetup(ctx, os.Getenv, "", name, name, io.Discard)
	if err != nil || second != first {
		t.Fatalf("second setup = %q, %v; want %q, nil", second, err, first)
	}
	if _, err := ddbClient.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
		t.Errorf("table: %v", err)
	}
	attrs, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(first), AttributeNames: []sqstypes.QueueAttributeName{"RedrivePolicy", "VisibilityTimeout"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := attrs.Attributes["VisibilityTimeout"]; got != "720" {
		t.Errorf("VisibilityTimeout = %s, want the template's 720", got)
	}
	if got := attrs.Attributes["RedrivePolicy"]; !strings.Contains(strings.ReplaceAll(got, " ", ""), `"maxReceiveCount":20`) &&
		!strings.Contains(strings.ReplaceAll(got, " ", ""), `"maxReceiveCount":"20"`) {
		t.Errorf("RedrivePolicy = %q, want the template's maxReceiveCount 20", got)
	}
}
