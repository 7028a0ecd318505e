package awscount_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pushfn/pushfn/shared/awscount"
	"github.com/pushfn/pushfn/shared/metrics"
)

// fakeAWS answers every request with the next status of statuses (200 once they run out) and an
// empty JSON object, and counts the requests it got by X-Amz-Target.
type fakeAWS struct {
	mu       sync.Mutex
	statuses []int
	got      map[string]int
}

func (f *fakeAWS) Do(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got[r.Header.Get("X-Amz-Target")]++
	status := http.StatusOK
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	body := "{}"
	if status != http.StatusOK {
		body = `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}`
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func config(f *fakeAWS) aws.Config {
	return aws.Config{
		Region: "us-east-1", HTTPClient: f, BaseEndpoint: aws.String("http://aws.invalid"),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = retry.BackoffDelayerFunc(noDelay) })
		},
		APIOptions: []func(*middleware.Stack) error{awscount.Middleware},
	}
}

// Each attempt of each call is counted under its service and operation, into the Set of the
// call's context; a call whose context has none is sent and not counted.
func TestMiddlewareCountsEachAttempt(t *testing.T) {
	t.Parallel()
	fake := &fakeAWS{statuses: []int{http.StatusInternalServerError, http.StatusInternalServerError}, got: map[string]int{}}
	cfg := config(fake)
	ddb := dynamodb.NewFromConfig(cfg)
	q := sqs.NewFromConfig(cfg)
	var out bytes.Buffer
	m := metrics.NewWriter(&out, "TestFunction").Invocation()
	ctx := metrics.NewContext(context.Background(), m)
	item := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "1"}}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item}); err != nil {
		t.Fatalf("PutItem: %v", err) // two 500s, then 200: three attempts
	}
	for range 2 {
		if _, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: item}); err != nil {
			t.Fatalf("GetItem: %v", err)
		}
	}
	if _, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String("http://aws.invalid/q"),
		Entries: []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("1"), MessageBody: aws.String("{}")}}}); err != nil {
		t.Fatalf("SendMessageBatch: %v", err)
	}
	if _, err := ddb.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"), Key: item}); err != nil {
		t.Fatalf("GetItem without a Set: %v", err)
	}
	if err := m.Flush(time.Now()); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for line := range strings.Lines(out.String()) {
		var doc struct {
			Operation string   `json:"operation"`
			Requests  *float64 `json:"AWSRequests"`
		}
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("document %q: %v", line, err)
		}
		if doc.Requests != nil {
			got[doc.Operation] += *doc.Requests
		}
	}
	want := map[string]float64{"DynamoDB.PutItem": 3, "DynamoDB.GetItem": 2, "SQS.SendMessageBatch": 1}
	if !maps.Equal(got, want) {
		t.Errorf("AWSRequests %v, want %v; the documents:\n%s", got, want, out.String())
	}
	sent := map[string]int{"DynamoDB_20120810.PutItem": 3, "DynamoDB_20120810.GetItem": 3, "AmazonSQS.SendMessageBatch": 1}
	if !maps.Equal(fake.got, sent) {
		t.Errorf("requests sent %v, want %v", fake.got, sent)
	}
}

func noDelay(int, error) (time.Duration, error) { return 0, nil }
