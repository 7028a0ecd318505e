// Command api is the HTTP API function behind API Gateway (payload format 2.0): wiring only.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/pushfn/pushfn/shared/awscount"
	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/httpapi"
	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/tracing"
)

func main() {
	cfg, err := config.Load(os.Getenv, config.APIRequired...)
	logger := logging.New(os.Stdout, logging.Options{Level: cfg.LogLevel, Function: lambdacontext.FunctionName, Service: cfg.ServiceName})
	slog.SetDefault(logger) // the standard library's own log lines (net/http's) become JSON lines too
	tr, trErr := tracing.Start(context.Background(), cfg.Tracing, tracing.Options{Service: lambdacontext.FunctionName, Log: logger, Getenv: os.Getenv})
	aws, awsErr := awsconfig.LoadDefaultConfig(context.Background())
	aws.APIOptions = append(aws.APIOptions, awscount.Middleware)
	if err = errors.Join(err, trErr, awsErr); err != nil {
		logger.Error("start", "error", err.Error())
		os.Exit(1)
	}
	tr.InstrumentAWS(&aws)
	h, err := httpapi.FromConfig(cfg, aws, logger)
	if err != nil {
		logger.Error("start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(tr.Handler(logging.ColdStart(h.Handle)))
}
