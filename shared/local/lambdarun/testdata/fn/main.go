// Command fn is a tiny Lambda function for lambdarun's tests: its event says what to do.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Event is what the test asks of the function.
type Event struct {
	Action string `json:"action"`
	Ms     int    `json:"ms,omitempty"`
	MB     int    `json:"mb,omitempty"`
	URL    string `json:"url,omitempty"`
}

// Result is what the function answers.
type Result struct {
	Action      string            `json:"action"`
	PID         int               `json:"pid"`
	RequestID   string            `json:"request_id"`
	FunctionARN string            `json:"function_arn"`
	DeadlineMs  int64             `json:"deadline_ms"`
	Env         map[string]string `json:"env,omitempty"`
	MaxInFlight int64             `json:"max_in_flight"`
}

var inFlight, maxInFlight atomic.Int64

var hold [][]byte

func handle(ctx context.Context, e Event) (Result, error) {
	n := inFlight.Add(1)
	defer inFlight.Add(-1)
	for {
		m := maxInFlight.Load()
		if n <= m || maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	r := Result{Action: e.Action, PID: os.Getpid(), RequestID: lc.AwsRequestID, FunctionARN: lc.InvokedFunctionArn, DeadlineMs: deadline.UnixMilli()}
	switch e.Action {
	case "echo":
	case "env":
		r.Env = map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			r.Env[k] = v
		}
	case "error":
		return r, errors.New("the function failed")
	case "panic":
		panic("the function panicked")
	case "exit":
		os.Exit(7)
	case "sleep":
		time.Sleep(time.Duration(e.Ms) * time.Millisecond)
	case "alloc":
		for range e.MB {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			hold = append(hold, b)
		}
		time.Sleep(time.Duration(e.Ms) * time.Millisecond)
	case "barrier":
		resp, err := http.Get(e.URL)
		if err != nil {
			return r, err
		}
		resp.Body.Close()
	default:
		return r, fmt.Errorf("unknown action %q", e.Action)
	}
	r.MaxInFlight = maxInFlight.Load()
	return r, nil
}

func main() {
	switch os.Getenv("FN_INIT") {
	case "exit":
		fmt.Fprintln(os.Stderr, "configuration: TABLE_NAME is required")
		os.Exit(1)
	case "error":
		body := `{"errorMessage":"configuration: TABLE_NAME is required","errorType":"Runtime.TestInit"}`
		resp, err := http.Post("http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error", "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	}
	lambda.Start(handle)
}
