// Command relay is the event trigger function (DESIGN §5): EventBridge, SNS and direct invokes in.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/pushfn/pushfn/shared/config"
)

func main() {
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		log.Error("relay: cannot start", "error", err.Error())
		os.Exit(1)
	}
	level.Set(cfg.LogLevel)
	if _, err := awsconfig.LoadDefaultConfig(context.Background()); err != nil {
		log.Error("relay: AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
		log.ErrorContext(ctx, "relay function is not built yet")
		return nil, errors.New("relay: not built yet")
	})
}
