package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/queue"
)

// TestIntegrationInvokeSampleEvents runs `pushfn invoke` on every sample event, as the README
// suggests, through the real binaries and the emulators.
func TestIntegrationInvokeSampleEvents(t *testing.T) {
	t.Parallel()
	awstest.Config(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildPushfn(t, root)
	builds := filepath.Join(t.TempDir(), "build")
	// The deliver sample's targets are pointed at a loopback receiver: tests reach no other host.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)

	tests := []struct {
		event    string
		function string
		check    func(t *testing.T, out []byte)
	}{
		{event: "api-post.json", function: "ApiFunction", check: wantStatusCode(202)},
		{event: "api-post-batch.json", function: "ApiFunction", check: wantStatusCode(202)},
		{event: "api-post-invalid.json", function: "ApiFunction", check: wantStatusCode(400)},
		{event: "api-get.json", function: "ApiFunction", check: wantStatusCode(404)},
		{event: "eventbridge.json", function: "RelayFunction", check: wantMessages},
		{event: "sns.json", function: "RelayFunction", check: wantMessages},
		{event: "invoke.json", function: "RelayFunction", check: wantMessages},
		{event: "sqs-batch.json", function: "DeliverFunction", check: func(t *testing.T, out []byte) {
			var resp struct {
				BatchItemFailures []json.RawMessage `json:"batchItemFailures"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Errorf("response %s is not an SQSEventResponse: %v", out, err)
			}
		}},
	}
	// One at a time, to spare the machine; each on a fresh table and queue, since the samples
	// share an idempotency key and a message id.
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			table, queue := dropStack(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			event := filepath.Join(root, "events", tt.event)
			if tt.function == "DeliverFunction" {
				raw, err := os.ReadFile(event)
				if err != nil {
					t.Fatal(err)
				}
				event = filepath.Join(t.TempDir(), tt.event)
				local := strings.ReplaceAll(string(raw), "https://hooks.example.com", receiver.URL)
				if err := os.WriteFile(event, []byte(local), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.CommandContext(ctx, bin, "invoke", tt.function, "-e", event, "--table", table, "--queue", queue, "--build-dir", builds)
			cmd.Dir = root
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("pushfn invoke %s -e %s: %v\nstdout: %s\nstderr:\n%s", tt.function, tt.event, err, out, tail(stderr.String(), 30))
			}
			if !strings.Contains(stderr.String(), "REPORT RequestId: ") {
				t.Errorf("no REPORT line on stderr:\n%s", tail(stderr.String(), 10))
			}
			tt.check(t, out)
		})
	}

	t.Run("function error exits 1", func(t *testing.T) {
		table, queue := dropStack(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		event := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(event, []byte(`"not an event"`), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, bin, "invoke", "DeliverFunction", "-e", event, "--table", table, "--queue", queue, "--build-dir", builds)
		cmd.Dir = root
		out, err := cmd.Output()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit %v, want status 1; stdout %s", err, out)
		}
		var fnErr struct {
			Type    string `json:"errorType"`
			Message string `json:"errorMessage"`
		}
		if err := json.Unmarshal(out, &fnErr); err != nil || fnErr.Type == "" || fnErr.Message == "" {
			t.Errorf("stdout %s: want the function error as JSON (%v)", out, err)
		}
	})
}

// dropStack names a table and a queue for a test and deletes them (and the dead-letter queue)
// when the test ends.
func dropStack(t *testing.T) (table, queueName string) {
	t.Helper()
	table, queueName = awstest.Name(t), awstest.Name(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = awstest.DynamoDB(t).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		client := awstest.SQS(t)
		for _, name := range []string{queueName, queueName + queue.DLQSuffix} {
			if out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)}); err == nil {
				_, _ = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
			}
		}
	})
	return table, queueName
}

func wantStatusCode(code int) func(*testing.T, []byte) {
	return func(t *testing.T, out []byte) {
		t.Helper()
		var resp struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != code {
			t.Errorf("response %s: want statusCode %d (%v)", out, code, err)
		}
	}
}

func wantMessages(t *testing.T, out []byte) {
	t.Helper()
	var resp struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Messages) == 0 || resp.Messages[0].ID == "" {
		t.Errorf("response %s: want the relayed messages' ids (%v)", out, err)
	}
}
