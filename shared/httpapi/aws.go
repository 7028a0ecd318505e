package httpapi

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/opevent"
)

// FromConfig builds the api function's Handler from its configuration (loaded with
// config.APIRequired) and AWS configuration: the ingest path, the endpoint store in the same
// table, the keyring of ENDPOINT_SECRETS_KEY, and the writer of its metrics, to stdout beside
// the logger's lines, where CloudWatch Logs reads them.
func FromConfig(cfg config.Config, awsCfg aws.Config, logger *slog.Logger) (*Handler, error) {
	keyring, err := endpoint.NewKeyring(cfg.EndpointSecretsKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvEndpointSecretsKey, err)
	}
	w := ingest.FromConfig(cfg, awsCfg, logger)
	h := &Handler{
		Enqueuer: w.Enqueuer, Records: w.Records, Rules: w.Rules, Logger: logger, Keyring: keyring,
		Endpoints: w.Endpoints, Deliveries: w.Records, Reopener: w.Records,
		Metrics: metrics.NewWriter(os.Stdout, cmp.Or(lambdacontext.FunctionName, "api")),
	}
	if events := opevent.FromConfig(cfg, awsCfg, logger); events.Enabled() {
		h.Events = events
	}
	return h, nil
}
