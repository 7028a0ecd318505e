package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/queue"
)

// A template whose TableBillingMode is PROVISIONED sets up as the default one does, and the
// local table is on demand all the same: a local stack takes the table's layout from the store,
// not the template's capacity settings, which DynamoDB Local would not enforce (the README's
// Deploy with SAM says so).
func TestIntegrationSetupIgnoresProvisionedBillingMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	provisioned := strings.Replace(string(text), "    Default: PAY_PER_REQUEST\n", "    Default: PROVISIONED\n", 1)
	if provisioned == string(text) {
		t.Fatal("the TableBillingMode parameter's default is gone from template.yaml")
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(provisioned), 0o600); err != nil {
		t.Fatal(err)
	}
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
	if _, err := runSetup(ctx, os.Getenv, path, name, name, io.Discard); err != nil {
		t.Fatalf("setup with a PROVISIONED template: %v", err)
	}
	out, err := ddbClient.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Table.BillingModeSummary; s == nil || s.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("local table billing mode %+v, want PAY_PER_REQUEST whatever the template's TableBillingMode", s)
	}
	if got := len(out.Table.GlobalSecondaryIndexes); got != 2 {
		t.Errorf("local table has %d indexes, want the template's 2", got)
	}
}
