// Command relay is the event relay function (EventBridge events, SNS notifications and direct
// invocations in, messages queued as the API queues them): wiring only.
package main

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/pushfn/pushfn/shared/awscount"
	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/relay"
	"github.com/pushfn/pushfn/shared/tracing"
)

func main() {
	cfg, err := config.Load(os.Getenv)
	logger := logging.New(os.Stdout, logging.Options{Level: cfg.LogLevel, Function: lambdacontext.FunctionName, Service: cfg.ServiceName})
	slog.SetDefault(logger) // the standard library's own log lines (net/http's) become JSON lines too
	tr, trErr := tracing.Start(context.Background(), cfg.Tracing, tracing.Options{Service: lambdacontext.FunctionName, Log: logger, Getenv: os.Getenv})
	if err = errors.Join(err, trErr); err != nil {
		logger.Error("start", "error", err)
		os.Exit(1)
	}
	aws, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "error", err)
		os.Exit(1)
	}
	aws.APIOptions = append(aws.APIOptions, awscount.Middleware)
	tr.InstrumentAWS(&aws)
	w := ingest.FromConfig(cfg, aws, logger)
	h := &relay.Handler{Enqueuer: w.Enqueuer, Rules: w.Rules, Logger: logger,
		Metrics: metrics.NewWriter(os.Stdout, cmp.Or(lambdacontext.FunctionName, "relay"))}
	lambda.Start(tr.Handler(logging.ColdStart(h.Handle)))
}
