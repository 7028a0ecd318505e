// Command api is the HTTP API function (DESIGN §2): API Gateway HTTP API events in, JSON out.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/pushfn/pushfn/shared/config"
)

func main() {
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		log.Error("api: cannot start", "error", err.Error())
		os.Exit(1)
	}
	level.Set(cfg.LogLevel)
	if _, err := awsconfig.LoadDefaultConfig(context.Background()); err != nil {
		log.Error("api: AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		log.ErrorContext(ctx, "api function is not built yet")
		return events.APIGatewayV2HTTPResponse{}, errors.New("api: not built yet")
	})
}
