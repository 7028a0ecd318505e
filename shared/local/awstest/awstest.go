// Package awstest connects integration tests to the local AWS emulators: clients, and the
// project's table and queues under names unique to a test. A test calls Config (or SQS, DynamoDB); it is skipped when PUSHFN_INTEGRATION is unset, as in a plain
// `go test`, and fails when it is set (as `make test` sets it) but an emulator cannot be reached,
// so integration tests never skip silently in CI.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// EnvIntegration turns integration tests on when set to 1.
const EnvIntegration = "PUSHFN_INTEGRATION"

// Endpoint variables the SDK reads by itself.
const (
	EnvSQSEndpoint      = "AWS_ENDPOINT_URL_SQS"
	EnvDynamoDBEndpoint = "AWS_ENDPOINT_URL_DYNAMODB"
)

// Enabled reports whether integration tests are to run.
func Enabled() bool { return os.Getenv(EnvIntegration) == "1" }

// Config returns an AWS configuration for the emulators named by AWS_ENDPOINT_URL_SQS and
// AWS_ENDPOINT_URL_DYNAMODB, with dummy credentials and region when the environment has none.
func Config(t testing.TB) aws.Config {
	t.Helper()
	if !Enabled() {
		t.Skipf("integration test: set %s=1 with the emulators running (make test does both)", EnvIntegration)
	}
	for _, name := range []string{EnvSQSEndpoint, EnvDynamoDBEndpoint} {
		if err := reachable(os.Getenv(name)); err != nil {
			t.Fatalf("%s=1 but %s: %v (start the emulators with make emulators-up)", EnvIntegration, name, err)
		}
	}
	opts := []func(*awsconfig.LoadOptions) error{}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, awsconfig.WithRegion("us-east-1"))
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return cfg
}

// SQS returns a client for the SQS emulator.
func SQS(t testing.TB) *sqs.Client { return sqs.NewFromConfig(Config(t)) }

// DynamoDB returns a client for the DynamoDB emulator. DynamoDB Local's CRC32 header does not
// match some of its error bodies, so response checksum validation is off (the SDK would log a
// warning for each).
func DynamoDB(t testing.TB) *dynamodb.Client {
	return dynamodb.NewFromConfig(Config(t), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
}

// Table creates the pushfn table (as store.CreateTable does) in DynamoDB Local under a name
// unique to t, and deletes it when t ends so the shared emulator does not fill up.
func Table(t testing.TB, client *dynamodb.Client) string {
	t.Helper()
	name := Name(t)
	t.Cleanup(func() {
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Logf("delete table %s: %v", name, err)
		}
	})
	if err := store.CreateTable(context.Background(), client, name); err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	return name
}

// Queues creates a queue and its dead-letter queue (as queue.CreateQueues does) on the SQS
// emulator under a name unique to t, and deletes both when t ends.
func Queues(t testing.TB, client *sqs.Client, maxReceiveCount int, visibility time.Duration) (url, dlq string) {
	t.Helper()
	url, dlq, err := queue.CreateQueues(context.Background(), client, Name(t), maxReceiveCount, visibility)
	if err != nil {
		t.Fatalf("create queues: %v", err)
	}
	t.Cleanup(func() {
		for _, u := range []string{url, dlq} {
			if _, err := client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(u)}); err != nil {
				t.Logf("delete queue %s: %v", u, err)
			}
		}
	})
	return url, dlq
}

// RecordTTL is the record TTL for stores in integration tests. Many tests run on a fixed clock
// days in the past, and DynamoDB Local, like DynamoDB, deletes items whose ttl has passed: with
// a short TTL their records would vanish mid-test at the emulator's next sweep (seen once a
// test clock's date plus the TTL fell behind the real date). A century keeps every such ttl
// in the future.
const RecordTTL = 100 * 365 * 24 * time.Hour

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Name returns a table or queue name unique to this test run, so tests can share the emulators.
func Name(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeName.ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return strings.Trim(name, "-") + "-" + hex.EncodeToString(b[:])
}

func reachable(endpoint string) error {
	if endpoint == "" {
		return errNotSet
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return errBadURL
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

type awstestError string

func (e awstestError) Error() string { return string(e) }

const (
	errNotSet = awstestError("not set")
	errBadURL = awstestError("not an http URL with a host")
)
