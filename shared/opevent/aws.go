package opevent

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/pushfn/pushfn/shared/config"
)

// FromConfig returns the Batcher of a function: putting events on cfg's EVENT_BUS_NAME through
// an EventBridge client of awsCfg (whose endpoint AWS_ENDPOINT_URL_EVENTBRIDGE may set), or,
// when no bus is named, a Batcher that publishes nothing and makes no client.
func FromConfig(cfg config.Config, awsCfg aws.Config, log *slog.Logger) *Batcher {
	if cfg.EventBusName == "" {
		return &Batcher{Log: log}
	}
	return New(eventbridge.NewFromConfig(awsCfg), cfg.EventBusName, log)
}
