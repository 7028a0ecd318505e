package deliver

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/opevent"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/ratelimit"
	"github.com/pushfn/pushfn/shared/store"
)

// FromConfig builds the deliver function's Handler from its configuration (loaded with
// config.DeliverRequired) and AWS configuration: the record store, the queue whose visibility it
// changes and to which fan-outs queue their deliveries (and copies waiting for their rate limit
// slot), the endpoints: those of messages sent to one, read through a cache and their secrets
// decrypted with the keyring of ENDPOINT_SECRETS_KEY, and the listing of a tenant's endpoints
// that fan-outs expand through; the limiter of their rate limits, its slot counters in the
// table; the keeping of their health; and, when EVENT_BUS_NAME names a bus, the publisher of
// their operational events (a delivery failed, an endpoint disabled); and the writer of its
// metrics, to stdout beside the logger's lines, where CloudWatch Logs reads them.
func FromConfig(cfg config.Config, awsCfg aws.Config, sender Sender, logger *slog.Logger) (*Handler, error) {
	keyring, err := endpoint.NewKeyring(cfg.EndpointSecretsKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvEndpointSecretsKey, err)
	}
	db := dynamodb.NewFromConfig(awsCfg)
	q := sqs.NewFromConfig(awsCfg)
	endpoints := store.NewDynamoDBEndpoints(db, cfg.TableName)
	records := store.NewDynamoDB(db, cfg.TableName, cfg.RecordTTL)
	rules := message.Rules{MaxPayloadBytes: cfg.MaxPayloadBytes, AllowHTTPTargets: cfg.AllowHTTPTargets, AllowPrivateTargets: cfg.AllowPrivateTargets}
	h := &Handler{
		Store:       records,
		Listing:     records,
		Endpoints:   NewEndpointCache(endpoints, keyring, rules),
		Subscribers: NewSubscriberCache(endpoints),
		Sender:      sender,
		Queue:       q, QueueURL: cfg.QueueURL, Producer: queue.NewProducer(q, cfg.QueueURL), Config: cfg, Log: logger,
		Limiter: ratelimit.New(store.NewDynamoDBSlots(db, cfg.TableName)),
		Health:  &Health{Store: endpoints},
		Metrics: metrics.NewWriter(os.Stdout, cmp.Or(lambdacontext.FunctionName, "deliver")),
	}
	if events := opevent.FromConfig(cfg, awsCfg, logger); events.Enabled() {
		h.Events, h.Health.Events = events, healthEvents{events}
	}
	return h, nil
}
