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
)

func main() {
	cfg, err := config.Load(os.Getenv, config.APIRequired...)
	logger := logging.New(os.Stdout, logging.Options{Level: cfg.LogLevel, Function: lambdacontext.FunctionName, Service: cfg.ServiceName})
	slog.SetDefault(logger) // the standard library's own log lines (net/http's) become JSON lines too
	aws, awsErr := awsconfig.LoadDefaultConfig(context.Background())
	aws.APIOptions = append(aws.APIOptions, awscount.Middleware)
	if err = errors.Join(err, awsErr); err != nil {
		logger.Error("start", "error", err.Error())
		os.Exit(1)
	}
	h, err := httpapi.FromConfig(cfg, aws, logger)
	if err != nil {
		logger.Error("start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(logging.ColdStart(h.Handle))
}
