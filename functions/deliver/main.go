// Command deliver is the delivery function: SQS batches in, each record pushed to its target
// concurrently, partial batch responses out. Wiring only.
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
	"github.com/pushfn/pushfn/shared/deliver"
	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/tracing"
)

var version = "dev" // set with -ldflags "-X main.version=..."

func main() {
	deliver.TuneGC(os.Getenv)
	cfg, err := config.Load(os.Getenv, config.DeliverRequired...)
	logger := logging.New(os.Stdout, logging.Options{Level: cfg.LogLevel, Function: lambdacontext.FunctionName, Service: cfg.ServiceName})
	slog.SetDefault(logger) // the standard library's own log lines (net/http's) become JSON lines too
	tr, trErr := tracing.Start(context.Background(), cfg.Tracing, tracing.Options{Service: lambdacontext.FunctionName, Log: logger, Getenv: os.Getenv})
	aws, awsErr := awsconfig.LoadDefaultConfig(context.Background())
	aws.APIOptions = append(aws.APIOptions, awscount.Middleware)
	tr.InstrumentAWS(&aws)
	push.ReserveFDs(cfg.MaxConcurrency + push.FDMargin) // one connection per delivery in flight
	sender := push.NewClient(push.Options{MaxPerHost: cfg.MaxPerHost, MaxIdleConns: cfg.MaxConcurrency,
		AllowPrivate: cfg.AllowPrivateTargets, Keys: cfg.SigningSecrets, Version: version, Propagator: tr.Propagator()})
	h, hErr := deliver.FromConfig(cfg, aws, sender, logger)
	if err = errors.Join(err, trErr, awsErr, hErr); err != nil {
		logger.Error("start", "error", err.Error())
		os.Exit(1)
	}
	h.Tracer = tr.Tracer()
	lambda.Start(tr.Handler(logging.ColdStart(h.Handle)))
}
