package ingest

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// Wiring is what a front door needs, built from the configuration and AWS clients: the
// validation rules, the record store and the Enqueuer over them.
type Wiring struct {
	Rules     message.Rules
	Records   *store.DynamoDB
	Endpoints *store.DynamoDBEndpoints
	Enqueuer  *Enqueuer
}

// FromConfig wires the DynamoDB stores and the SQS producer of cfg into an Enqueuer, as both the
// api and the relay function run it; the Enqueuer finds endpoints through a cache of its own.
func FromConfig(cfg config.Config, awsCfg aws.Config, logger *slog.Logger) Wiring {
	db := dynamodb.NewFromConfig(awsCfg)
	records := store.NewDynamoDB(db, cfg.TableName, cfg.RecordTTL)
	endpoints := store.NewDynamoDBEndpoints(db, cfg.TableName)
	return Wiring{
		Rules:     message.Rules{MaxPayloadBytes: cfg.MaxPayloadBytes, AllowHTTPTargets: cfg.AllowHTTPTargets, AllowPrivateTargets: cfg.AllowPrivateTargets},
		Records:   records,
		Endpoints: endpoints,
		Enqueuer: &Enqueuer{Store: records, Producer: queue.NewProducer(sqs.NewFromConfig(awsCfg), cfg.QueueURL), Logger: logger,
			Endpoints: NewEndpointCache(endpoints)},
	}
}
