package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/pushfn/pushfn/shared/local/emulator"
	"github.com/pushfn/pushfn/shared/local/template"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// setup runs `pushfn setup`: the table and the queue with its dead-letter queue, created in the
// emulators (or wherever AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL_DYNAMODB point) with the
// template's queue settings. Safe to run again.
func setup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	table := fs.String("table", defaultTable, "name of the DynamoDB table (the one pushfn run uses)")
	queueName := fs.String("queue", defaultQueue, "name of the SQS queue, the one pushfn run uses (its dead-letter queue gets the suffix "+queue.DLQSuffix+")")
	templatePath := fs.String("template", "", "SAM template to read the queue settings from (default: template.yaml at the repository root)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: pushfn setup [flags]

Creates the table and the queues in the local emulators, with the visibility timeout and
maxReceiveCount of template.yaml, and prints export lines for QUEUE_URL and TABLE_NAME.
Endpoints: AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB when set, else the emulators'
(PUSHFN_SQS_PORT, PUSHFN_DYNAMODB_PORT). Run pushfn emulators up first.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	queueURL, err := runSetup(ctx, os.Getenv, *templatePath, *table, *queueName, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Printf("export QUEUE_URL=%s\nexport TABLE_NAME=%s\n", queueURL, *table)
	return nil
}

func runSetup(ctx context.Context, getenv func(string) string, templatePath, table, queueName string, progress io.Writer) (queueURL string, err error) {
	o, err := emulator.OptionsFromEnv(getenv)
	if err != nil {
		return "", err
	}
	if templatePath == "" {
		templatePath = filepath.Join(o.Root, "template.yaml")
	}
	tm, err := template.Load(templatePath)
	if err != nil {
		return "", err
	}
	q, ok := tm.Queue("Queue")
	if !ok || q.MaxReceiveCount == 0 {
		return "", fmt.Errorf("%s: no Queue with a redrive policy", templatePath)
	}
	cfg, err := localConfig(ctx, getenv)
	if err != nil {
		return "", err
	}
	sqsEndpoint, ddbEndpoint := getenv("AWS_ENDPOINT_URL_SQS"), getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if sqsEndpoint == "" {
		sqsEndpoint = o.SQSEndpoint()
	}
	if ddbEndpoint == "" {
		ddbEndpoint = o.DynamoDBEndpoint()
	}
	sqsClient := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(sqsEndpoint) })
	ddbClient := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddbEndpoint)
		o.DisableValidateResponseChecksum = true // DynamoDB Local sends no CRC32 the SDK accepts
	})

	fmt.Fprintf(progress, "creating table %s at %s\n", table, ddbEndpoint)
	if err := store.CreateTable(ctx, ddbClient, table); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "creating queues %s and %s%s at %s (visibility %s, maxReceiveCount %d)\n",
		queueName, queueName, queue.DLQSuffix, sqsEndpoint, q.VisibilityTimeout, q.MaxReceiveCount)
	queueURL, _, err = queue.CreateQueues(ctx, sqsClient, queueName, q.MaxReceiveCount, q.VisibilityTimeout)
	if err != nil {
		return "", err
	}
	return queueURL, nil
}

// localConfig loads the AWS configuration with a region and dummy credentials when the
// environment has none, as the emulators accept any.
func localConfig(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if getenv("AWS_REGION") == "" && getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, awsconfig.WithRegion("us-east-1"))
	}
	if getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}
