// Package loggingtest helps tests read what the functions' logger (logging.New) wrote for an
// invocation.
//
// Tests only: no function links it.
package loggingtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Invocation returns a context as the Lambda runtime makes it for the invocation with request id.
func Invocation(id string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
}

// Traced returns ctx holding an X-Ray trace header as aws-lambda-go stores the invocation's
// Lambda-Runtime-Trace-Id.
func Traced(ctx context.Context, header string) context.Context {
	//lint:ignore SA1029 the key aws-lambda-go uses, which the logger reads
	return context.WithValue(ctx, "x-amzn-trace-id", header) //nolint:staticcheck
}

// Lines decodes every line of out as a JSON object, failing t on a line that is not one.
func Lines(t testing.TB, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}
