// Command relay is the event relay function (DESIGN §5, EventBridge/SNS/direct): wiring only.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/relay"
)

func main() {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	aws, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "error", err)
		os.Exit(1)
	}
	w := ingest.FromConfig(cfg, aws, logger)
	h := &relay.Handler{Enqueuer: w.Enqueuer, Rules: w.Rules, Logger: logger}
	lambda.Start(h.Handle)
}
