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
