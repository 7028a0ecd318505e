// Package config reads pushfn's settings from the environment once, at start, into a typed and
// validated Config; a bad value is an error naming the variable.
//
// Ships in all three functions.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushfn/pushfn/shared/logging"
)

// Config is every setting a function reads from its environment, parsed and validated.
type Config struct {
	QueueURL            string
	TableName           string
	MaxConcurrency      int
	MaxPerHost          int
	RequestTimeout      time.Duration
	MaxAttempts         int
	RetryBaseDelay      time.Duration
	RetryMaxDelay       time.Duration
	RecordTTL           time.Duration
	MaxPayloadBytes     int
	SigningSecrets      [][]byte // decoded from the whsec_<base64> form, in the order given
	AllowPrivateTargets bool
	AllowHTTPTargets    bool
	LogLevel            slog.Level // LOG_LEVEL, or AWS_LAMBDA_LOG_LEVEL when Lambda sets it
	// ServiceName is the service every log line names (POWERTOOLS_SERVICE_NAME, as Powertools
	// for AWS Lambda reads it).
	ServiceName string
	// FunctionTimeout is the deliver function's own timeout, which Lambda shows a function only
	// as each invocation's deadline; the template sets it from the function's Timeout so that a
	// REQUEST_TIMEOUT no invocation can fit is refused at init. Zero: not known, not checked.
	FunctionTimeout time.Duration
	// MaxReceiveCount is the queue's redrive maxReceiveCount: the receive after which SQS moves
	// a copy to the dead-letter queue. Zero: not known.
	MaxReceiveCount int
	// EndpointSecretsKey is the key endpoint secrets are encrypted at rest with
	// (ENDPOINT_SECRETS_KEY, at least MinEndpointSecretsKeyChars characters). Empty when unset;
	// the api and deliver functions require it (see APIRequired, DeliverRequired); the relay
	// never decrypts a secret and does without.
	EndpointSecretsKey Secret
	// EndpointDisableAfter is how long every attempt to an endpoint must have failed before the
	// deliver function disables it (ENDPOINT_DISABLE_AFTER); 0 never disables one.
	EndpointDisableAfter time.Duration
	// EventBusName is the EventBridge bus operational events go to (EVENT_BUS_NAME); empty: no
	// events are published.
	EventBusName string
	// Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
	// names an OTLP endpoint. Only whether it is on is kept here: the tracing package reads
	// every OTEL_* variable through the OpenTelemetry SDK's own handling.
	Tracing bool
}

// Secret is a setting that must never be shown: every textual form hides it. Reveal returns it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return s.String() }

// Format hides the value from every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MinEndpointSecretsKeyChars is the shortest ENDPOINT_SECRETS_KEY accepted (the endpoint
// package's MinKeyChars).
const MinEndpointSecretsKeyChars = 32

// EnvEndpointSecretsKey names the variable holding the key endpoint secrets are encrypted with.
const EnvEndpointSecretsKey = "ENDPOINT_SECRETS_KEY"

// APIRequired lists the variables the api function needs beyond those every function needs:
// pass it to Load there.
var APIRequired = []string{EnvEndpointSecretsKey}

// DeliverRequired lists the variables the deliver function needs beyond those every function
// needs (it decrypts the secrets that sign pushes to endpoints): pass it to Load there.
var DeliverRequired = []string{EnvEndpointSecretsKey}

// DeliverReserve is the time the deliver function keeps around every send within an invocation:
// the claim's budget before it and the margin before the deadline (deliver's DefaultStoreBudget
// and DefaultMargin). A send starts only when REQUEST_TIMEOUT plus this fits before the deadline.
const DeliverReserve = 4 * time.Second

// Limits on settings: SQS caps visibility timeouts at 12 hours and message size at 1 MiB, and
// the envelope around a payload needs room of its own.
const (
	maxRetryDelay   = 12 * time.Hour
	maxPayloadBytes = 1_000_000
)

// Defaults returns the configuration used where the environment sets nothing. QueueURL and
// TableName have no default.
func Defaults() Config {
	return Config{
		MaxConcurrency:  512,
		MaxPerHost:      128,
		RequestTimeout:  10 * time.Second,
		MaxAttempts:     10,
		RetryBaseDelay:  10 * time.Second,
		RetryMaxDelay:   time.Hour,
		RecordTTL:       7 * 24 * time.Hour,
		MaxPayloadBytes: 262_144,
		LogLevel:        slog.LevelInfo,
		ServiceName:     logging.DefaultService,
		// As Svix: five days of failure, time to notice and fix a receiver before it is cut off.
		EndpointDisableAfter: 5 * 24 * time.Hour,
	}
}

// Names lists every environment variable Load reads.
func Names() []string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.name
	}
	return names
}

// setting parses one environment variable into c.
type setting struct {
	name     string
	required bool
	parse    func(c *Config, v string) error
	secret   bool // never repeat the value in an error
}

var settings = []setting{
	{name: "QUEUE_URL", required: true, parse: func(c *Config, v string) error { c.QueueURL = v; return nil }},
	{name: "TABLE_NAME", required: true, parse: func(c *Config, v string) error { c.TableName = v; return nil }},
	{name: "MAX_CONCURRENCY", required: false, parse: intIn(1, 100_000, func(c *Config) *int { return &c.MaxConcurrency })},
	{name: "MAX_PER_HOST", required: false, parse: intIn(1, 100_000, func(c *Config) *int { return &c.MaxPerHost })},
	{name: "REQUEST_TIMEOUT", required: false, parse: durationIn(time.Millisecond, 15*time.Minute, func(c *Config) *time.Duration { return &c.RequestTimeout })},
	{name: "MAX_ATTEMPTS", required: false, parse: intIn(1, 1000, func(c *Config) *int { return &c.MaxAttempts })},
	{name: "RETRY_BASE_DELAY", required: false, parse: durationIn(0, maxRetryDelay, func(c *Config) *time.Duration { return &c.RetryBaseDelay })},
	{name: "RETRY_MAX_DELAY", required: false, parse: durationIn(0, maxRetryDelay, func(c *Config) *time.Duration { return &c.RetryMaxDelay })},
	{name: "RECORD_TTL", required: false, parse: durationIn(time.Minute, 10*365*24*time.Hour, func(c *Config) *time.Duration { return &c.RecordTTL })},
	{name: "MAX_PAYLOAD_BYTES", required: false, parse: intIn(1, maxPayloadBytes, func(c *Config) *int { return &c.MaxPayloadBytes })},
	{name: "SIGNING_SECRETS", required: false, parse: parseSecrets, secret: true},
	{name: "ALLOW_PRIVATE_TARGETS", required: false, parse: boolean(func(c *Config) *bool { return &c.AllowPrivateTargets })},
	{name: "ALLOW_HTTP_TARGETS", required: false, parse: boolean(func(c *Config) *bool { return &c.AllowHTTPTargets })},
	{name: "LOG_LEVEL", required: false, parse: parseLevel},
	// After LOG_LEVEL, so it wins: Lambda sets it from the function's ApplicationLogLevel.
	{name: "AWS_LAMBDA_LOG_LEVEL", required: false, parse: parseLevel},
	{name: "POWERTOOLS_SERVICE_NAME", required: false, parse: parseService},
	{name: "FUNCTION_TIMEOUT", required: false, parse: durationIn(time.Second, 15*time.Minute, func(c *Config) *time.Duration { return &c.FunctionTimeout })},
	{name: "MAX_RECEIVE_COUNT", required: false, parse: intIn(1, 1000, func(c *Config) *int { return &c.MaxReceiveCount })},
	{name: EnvEndpointSecretsKey, required: false, parse: parseEndpointKey, secret: true},
	{name: "ENDPOINT_DISABLE_AFTER", required: false, parse: durationIn(0, 10*365*24*time.Hour, func(c *Config) *time.Duration { return &c.EndpointDisableAfter })},
	{name: "EVENT_BUS_NAME", required: false, parse: parseEventBus},
	{name: EnvOTLPEndpoint, required: false, parse: parseOTLPEndpoint},
	{name: EnvOTLPTracesEndpoint, required: false, parse: parseOTLPEndpoint},
}

// The variables that turn tracing on: the OpenTelemetry SDK's own names for the OTLP endpoint of
// every signal, and of traces alone.
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// Load reads the settings through getenv (os.Getenv in main, a map in tests). It reports every
// bad or missing variable at once, each error naming its variable. The variables named in
// require are required too, beside QUEUE_URL and TABLE_NAME (a function passes what only it
// needs, such as APIRequired).
func Load(getenv func(string) string, require ...string) (Config, error) {
	c := Defaults()
	var errs []error
	for _, s := range settings {
		v := strings.TrimSpace(getenv(s.name))
		if v == "" {
			if s.required || slices.Contains(require, s.name) {
				errs = append(errs, fmt.Errorf("%s is required", s.name))
			}
			continue
		}
		if err := s.parse(&c, v); err != nil {
			if s.secret {
				errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			} else {
				errs = append(errs, fmt.Errorf("%s=%q: %w", s.name, v, err))
			}
		}
	}
	if c.RetryBaseDelay > c.RetryMaxDelay {
		errs = append(errs, fmt.Errorf("RETRY_BASE_DELAY (%s) is above RETRY_MAX_DELAY (%s)", c.RetryBaseDelay, c.RetryMaxDelay))
	}
	if c.FunctionTimeout > 0 && c.RequestTimeout+DeliverReserve > c.FunctionTimeout {
		errs = append(errs, fmt.Errorf("REQUEST_TIMEOUT (%s) plus %s for the record store and the deadline margin does not fit in FUNCTION_TIMEOUT (%s): no delivery could ever start", c.RequestTimeout, DeliverReserve, c.FunctionTimeout))
	}
	if c.MaxReceiveCount > 0 && c.MaxReceiveCount <= c.MaxAttempts {
		errs = append(errs, fmt.Errorf("MAX_RECEIVE_COUNT (%d) is not above MAX_ATTEMPTS (%d): copies would be dead-lettered before their last attempt", c.MaxReceiveCount, c.MaxAttempts))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

func intIn(lo, hi int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("not a whole number")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be from %d to %d", lo, hi)
		}
		*field(c) = n
		return nil
	}
}

// durationIn accepts a Go duration ("10s", "1h30m") or a whole number of seconds, as CloudFormation
// parameters usually give them.
func durationIn(lo, hi time.Duration, field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			secs, nerr := strconv.ParseInt(v, 10, 64)
			if nerr != nil || secs > int64(hi/time.Second)+1 {
				return errors.New(`not a duration such as "10s" or a number of seconds`)
			}
			d = time.Duration(secs) * time.Second
		}
		if d < lo || d > hi {
			return fmt.Errorf("must be from %s to %s", lo, hi)
		}
		*field(c) = d
		return nil
	}
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "true", "1", "yes":
			*field(c) = true
		case "false", "0", "no":
			*field(c) = false
		default:
			return errors.New("must be true or false")
		}
		return nil
	}
}

// parseLevel reads a log level as Lambda names them (TRACE, DEBUG, INFO, WARN, ERROR or FATAL),
// in any case, so the level an operator sets in a function's logging configuration is the one
// the code logs at.
func parseLevel(c *Config, v string) error {
	l, err := logging.ParseLevel(v)
	if err != nil {
		return err
	}
	c.LogLevel = l
	return nil
}

// parseService reads the name of the service log lines name: at most 128 printable ASCII
// characters.
func parseService(c *Config, v string) error {
	if len(v) > 128 {
		return errors.New("is longer than 128 characters")
	}
	for _, r := range v {
		if r < ' ' || r > '~' {
			return fmt.Errorf("has %q: a service name has only printable ASCII characters", r)
		}
	}
	c.ServiceName = v
	return nil
}

// parseEndpointKey reads ENDPOINT_SECRETS_KEY; the error never repeats it.
func parseEndpointKey(c *Config, v string) error {
	if n := len(v); n < MinEndpointSecretsKeyChars {
		return fmt.Errorf("is %d characters; at least %d are needed (generate one with: openssl rand -base64 48)", n, MinEndpointSecretsKeyChars)
	}
	c.EndpointSecretsKey = Secret(v)
	return nil
}

// parseEventBus reads the name of an EventBridge bus: 1 to 256 letters, digits and . - _ /
// (EventBridge's own rule for names).
func parseEventBus(c *Config, v string) error {
	if len(v) > 256 {
		return errors.New("is longer than 256 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r)) {
			return fmt.Errorf("has %q: a bus name has only letters, digits and . - _ /", r)
		}
	}
	c.EventBusName = v
	return nil
}

// parseOTLPEndpoint turns tracing on for an OTLP/HTTP endpoint: an absolute http or https URL
// (the SDK's form; the value is otherwise the SDK's to read).
func parseOTLPEndpoint(c *Config, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New(`not an absolute http(s) URL such as "http://localhost:4318"`)
	}
	c.Tracing = true
	return nil
}

// parseSecrets reads space-separated Standard Webhooks secrets (whsec_<base64>); several allow
// rotation. The error never repeats a secret.
func parseSecrets(c *Config, v string) error {
	var secrets [][]byte
	for i, f := range strings.Fields(v) {
		raw, ok := strings.CutPrefix(f, "whsec_")
		if !ok {
			return fmt.Errorf("secret %d does not start with whsec_", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(raw)
		if err != nil || len(key) == 0 {
			return fmt.Errorf("secret %d is not whsec_ followed by base64", i+1)
		}
		secrets = append(secrets, key)
	}
	c.SigningSecrets = secrets
	return nil
}
