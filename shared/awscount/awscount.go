// Package awscount counts every request the AWS SDK sends, by service and operation, into the
// metrics of the invocation that made it, so that what a function costs in AWS requests is
// measured where it is spent.
//
// Ships in all three functions.
package awscount

import (
	"context"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/pushfn/pushfn/shared/metrics"
)

// ID is the name of the middleware in the SDK's stack.
const ID = "pushfn.awscount"

// Middleware adds the counter to an SDK client's stack. Append it to aws.Config.APIOptions: every
// client built from that config then counts, for each attempt it sends (a retried call counts
// each attempt, as AWS bills each), one metrics.AWSRequests under the operation
// "<service id>.<operation>" ("DynamoDB.PutItem", "SQS.SendMessageBatch") into the metrics.Set
// the call's context carries. A call whose context carries none is not counted.
func Middleware(stack *middleware.Stack) error {
	// At the end of the finalize step: after the retry loop has begun, so once per attempt.
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc(ID, count), middleware.After)
}

func count(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	metrics.FromContext(ctx).AddBy(metrics.AWSRequests, metrics.DimOperation, Operation(ctx), 1)
	return next.HandleFinalize(ctx, in)
}

// Operation returns the "<service id>.<operation>" of the call ctx belongs to, as the counter
// names it.
func Operation(ctx context.Context) string {
	return awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
}
