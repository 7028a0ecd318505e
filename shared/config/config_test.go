package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func base() map[string]string {
	return map[string]string{"QUEUE_URL": "http://127.0.0.1:4566/000000000000/q", "TABLE_NAME": "t"}
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(base()))
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.QueueURL, want.TableName = "http://127.0.0.1:4566/000000000000/q", "t"
	if c.MaxConcurrency != 512 || c.MaxPerHost != 128 || c.RequestTimeout != 10*time.Second ||
		c.MaxAttempts != 10 || c.RetryBaseDelay != 10*time.Second || c.RetryMaxDelay != time.Hour ||
		c.RecordTTL != 168*time.Hour || c.MaxPayloadBytes != 262144 || c.LogLevel != slog.LevelInfo ||
		c.AllowHTTPTargets || c.AllowPrivateTargets || c.SigningSecrets != nil || c.EndpointDisableAfter != 120*time.Hour ||
		c.EventBusName != "" || c.ServiceName != "pushfn" {
		t.Fatalf("defaults: got %+v", c)
	}
	if c.QueueURL != want.QueueURL || c.TableName != want.TableName {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadParses(t *testing.T) {
	t.Parallel()
	m := base()
	m["MAX_CONCURRENCY"] = "1000"
	m["REQUEST_TIMEOUT"] = "2500ms"
	m["RETRY_BASE_DELAY"] = "1"
	m["RETRY_MAX_DELAY"] = "60"
	m["SIGNING_SECRETS"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_c2Vjb25k"
	m["ALLOW_PRIVATE_TARGETS"] = "true"
	m["LOG_LEVEL"] = "debug"
	m["EVENT_BUS_NAME"] = "ops/pushfn-events_1.a"
	m["POWERTOOLS_SERVICE_NAME"] = "orders-webhooks"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.EventBusName != "ops/pushfn-events_1.a" {
		t.Errorf("EventBusName %q, want ops/pushfn-events_1.a", c.EventBusName)
	}
	if c.MaxConcurrency != 1000 || c.RequestTimeout != 2500*time.Millisecond || c.RetryBaseDelay != time.Second ||
		c.RetryMaxDelay != time.Minute || len(c.SigningSecrets) != 2 || string(c.SigningSecrets[1]) != "second" ||
		!c.AllowPrivateTargets || c.LogLevel != slog.LevelDebug || c.ServiceName != "orders-webhooks" {
		t.Fatalf("got %+v", c)
	}
}

// ENDPOINT_DISABLE_AFTER takes a Go duration or seconds, and 0 for never.
func TestLoadEndpointDisableAfter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"90", 90 * time.Second},
		{"36h", 36 * time.Hour},
	} {
		m := base()
		m["ENDPOINT_DISABLE_AFTER"] = tt.value
		c, err := Load(env(m))
		if err != nil || c.EndpointDisableAfter != tt.want {
			t.Errorf("ENDPOINT_DISABLE_AFTER=%q: %v, %v; want %v", tt.value, c.EndpointDisableAfter, err, tt.want)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, value string
	}{
		{"missing queue", "QUEUE_URL", ""},
		{"missing table", "TABLE_NAME", ""},
		{"not a number", "MAX_CONCURRENCY", "many"},
		{"zero concurrency", "MAX_CONCURRENCY", "0"},
		{"negative per host", "MAX_PER_HOST", "-1"},
		{"bad duration", "REQUEST_TIMEOUT", "soon"},
		{"timeout too long", "REQUEST_TIMEOUT", "1h"},
		{"zero attempts", "MAX_ATTEMPTS", "0"},
		{"retry over 12h", "RETRY_MAX_DELAY", "13h"},
		{"base above max", "RETRY_BASE_DELAY", "2h"},
		{"ttl too short", "RECORD_TTL", "1s"},
		{"payload too big", "MAX_PAYLOAD_BYTES", "2000000"},
		{"secret prefix", "SIGNING_SECRETS", "c2VjcmV0"},
		{"secret base64", "SIGNING_SECRETS", "whsec_!!!"},
		{"bool", "ALLOW_HTTP_TARGETS", "maybe"},
		{"level", "LOG_LEVEL", "loud"},
		{"lambda level", "AWS_LAMBDA_LOG_LEVEL", "loud"},
		{"python's level name", "AWS_LAMBDA_LOG_LEVEL", "WARNING"},
		{"service with a newline", "POWERTOOLS_SERVICE_NAME", "orders\nlevel=ERROR"},
		{"service too long", "POWERTOOLS_SERVICE_NAME", strings.Repeat("s", 129)},
		{"endpoint key too short", "ENDPOINT_SECRETS_KEY", strings.Repeat("k", 31)},
		{"negative disable after", "ENDPOINT_DISABLE_AFTER", "-1h"},
		{"disable after not a duration", "ENDPOINT_DISABLE_AFTER", "5 days"},
		{"event bus with a space", "EVENT_BUS_NAME", "my bus"},
		{"event bus as an ARN", "EVENT_BUS_NAME", "arn:aws:events:us-east-1:123456789012:event-bus/ops"},
		{"event bus too long", "EVENT_BUS_NAME", strings.Repeat("b", 257)},
		{"otlp endpoint without a scheme", "OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"},
		{"otlp endpoint not http", "OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317"},
		{"otlp traces endpoint without a host", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http:///v1/traces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			m[tt.key] = tt.value
			_, err := Load(env(m))
			if err == nil {
				t.Fatalf("%s=%q accepted", tt.key, tt.value)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error %q does not name %s", err, tt.key)
			}
		})
	}
}

// A REQUEST_TIMEOUT that leaves no room for the store and the margin in the function's timeout
// would start no delivery ever: it is refused at init, naming both variables.
func TestLoadChecksRequestTimeoutAgainstFunctionTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		request, function string
		ok                bool
	}{
		{"10s", "120", true},
		{"116s", "120", true},
		{"117s", "120", false},
		{"10s", "12s", false},
		{"15m", "", true}, // the function's timeout not known: not checked
	}
	for _, tt := range tests {
		m := base()
		m["REQUEST_TIMEOUT"], m["FUNCTION_TIMEOUT"] = tt.request, tt.function
		_, err := Load(env(m))
		if (err == nil) != tt.ok {
			t.Errorf("REQUEST_TIMEOUT=%s FUNCTION_TIMEOUT=%s: error %v, want accepted %v", tt.request, tt.function, err, tt.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "REQUEST_TIMEOUT") || !strings.Contains(err.Error(), "FUNCTION_TIMEOUT")) {
			t.Errorf("error %q does not name REQUEST_TIMEOUT and FUNCTION_TIMEOUT", err)
		}
	}
}

func TestLoadChecksMaxReceiveCount(t *testing.T) {
	t.Parallel()
	m := base()
	m["MAX_ATTEMPTS"], m["MAX_RECEIVE_COUNT"] = "10", "10"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "MAX_RECEIVE_COUNT") {
		t.Errorf("MAX_RECEIVE_COUNT equal to MAX_ATTEMPTS: error %v, want a refusal naming it", err)
	}
	m["MAX_RECEIVE_COUNT"] = "20"
	if c, err := Load(env(m)); err != nil || c.MaxReceiveCount != 20 {
		t.Errorf("MAX_RECEIVE_COUNT=20: %d, %v", c.MaxReceiveCount, err)
	}
}

func TestLoadNeverEchoesSecrets(t *testing.T) {
	t.Parallel()
	m := base()
	m["SIGNING_SECRETS"] = "whsec_c2Vjb25k hunter2"
	_, err := Load(env(m))
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "c2Vjb25k") {
		t.Fatalf("error %v: want a refusal that does not repeat the secrets", err)
	}
}

func TestNamesCoversEveryVariable(t *testing.T) {
	t.Parallel()
	// The 17 settings an operator sets (POWERTOOLS_SERVICE_NAME among them), the 2 the
	// template derives, the level Lambda sets from the function's logging configuration, the
	// endpoint secrets key the template generates, and the 2 OTLP endpoints that turn tracing on.
	if got := len(Names()); got != 23 {
		t.Fatalf("Names() has %d variables, want 23", got)
	}
}

// Tracing is on when either OTLP endpoint variable names an endpoint, and off otherwise.
func TestLoadTracing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"unset", nil, false},
		{"empty", map[string]string{EnvOTLPEndpoint: " "}, false},
		{"every signal's endpoint", map[string]string{EnvOTLPEndpoint: "http://localhost:4318"}, true},
		{"the traces endpoint", map[string]string{EnvOTLPTracesEndpoint: "https://otlp.example.com/v1/traces"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			for k, v := range tt.env {
				m[k] = v
			}
			c, err := Load(env(m))
			if err != nil || c.Tracing != tt.want {
				t.Fatalf("Tracing = %v, %v; want %v", c.Tracing, err, tt.want)
			}
		})
	}
}

// ENDPOINT_SECRETS_KEY is optional for every function but required where Load is told so (the
// api and deliver functions); its value never shows in an error or a printed Config.
func TestEndpointSecretsKey(t *testing.T) {
	t.Parallel()
	if c, err := Load(env(base())); err != nil || c.EndpointSecretsKey != "" {
		t.Fatalf("without the key and not required: %v, %q", err, c.EndpointSecretsKey.Reveal())
	}
	for name, required := range map[string][]string{"api": APIRequired, "deliver": DeliverRequired} {
		_, err := Load(env(base()), required...)
		if err == nil || !strings.Contains(err.Error(), "ENDPOINT_SECRETS_KEY is required") {
			t.Fatalf("%s function without the key: %v; want an error naming ENDPOINT_SECRETS_KEY", name, err)
		}
	}
	key := "a-key-of-thirty-two-characters-at-least-" + "hunter2"
	m := base()
	m["ENDPOINT_SECRETS_KEY"] = key
	c, err := Load(env(m), APIRequired...)
	if err != nil || c.EndpointSecretsKey.Reveal() != key {
		t.Fatalf("with the key: %v", err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "config", c, "key", c.EndpointSecretsKey)
	for _, text := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c.EndpointSecretsKey), logged.String()} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("the key shows in %q", text)
		}
	}
	m["ENDPOINT_SECRETS_KEY"] = "hunter2-is-too-short"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "ENDPOINT_SECRETS_KEY") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a short key: %v; want an error naming the variable, not the value", err)
	}
}

func TestLambdaLogLevelWins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		logLevel, lambdaLevel string
		want                  slog.Level
	}{
		{"", "", slog.LevelInfo},
		{"debug", "", slog.LevelDebug},
		{"", "WARN", slog.LevelWarn},
		{"debug", "ERROR", slog.LevelError},
		{"error", "DEBUG", slog.LevelDebug},
		{"info", "TRACE", slog.LevelDebug - 4},
		{"info", "FATAL", slog.LevelError + 4},
		{"TRACE", "", slog.LevelDebug - 4},
		{"warn", "info", slog.LevelInfo},
	}
	for _, tt := range tests {
		m := base()
		m["LOG_LEVEL"], m["AWS_LAMBDA_LOG_LEVEL"] = tt.logLevel, tt.lambdaLevel
		c, err := Load(env(m))
		if err != nil {
			t.Fatalf("LOG_LEVEL=%q AWS_LAMBDA_LOG_LEVEL=%q: %v", tt.logLevel, tt.lambdaLevel, err)
		}
		if c.LogLevel != tt.want {
			t.Errorf("LOG_LEVEL=%q AWS_LAMBDA_LOG_LEVEL=%q: level %v, want %v", tt.logLevel, tt.lambdaLevel, c.LogLevel, tt.want)
		}
	}
}
