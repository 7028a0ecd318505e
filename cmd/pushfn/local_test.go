package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

func TestEnvironment(t *testing.T) {
	t.Parallel()
	shell := []string{"LOG_LEVEL=debug", "AWS_ENDPOINT_URL_SQS=http://127.0.0.1:4566", "UNDECLARED_VAR=x", "PATH=/usr/bin"}
	fn := localFunction{
		LogicalID: "DeliverFunction",
		Env:       map[string]string{"LOG_LEVEL": "info", "MAX_ATTEMPTS": "10", "RETRY_BASE_DELAY": "10s"},
		Refs:      map[string]string{"QUEUE_URL": "Queue", "TABLE_NAME": "Table"},
		Secrets:   map[string]string{"ENDPOINT_SECRETS_KEY": "EndpointSecretsKey"},
		LogFormat: "JSON",
	}
	stack := localStack{Table: "t1", QueueURL: "http://127.0.0.1:4566/000000000000/q1", Secrets: map[string]string{"EndpointSecretsKey": "local-key"}}
	path := filepath.Join(t.TempDir(), "env.json")
	if err := os.WriteFile(path, []byte(`{"Parameters": {"MAX_ATTEMPTS": "3"}, "DeliverFunction": {"RETRY_BASE_DELAY": "2s"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := lambdarun.ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := environment(fn, stack, map[string]string{"ALLOW_PRIVATE_TARGETS": "true", "RETRY_BASE_DELAY": "1s"}, map[string]string{"RETRY_MAX_DELAY": "5s"}, file, shell)
	want := map[string]string{
		"TABLE_NAME":            "t1",
		"QUEUE_URL":             stack.QueueURL,
		"LOG_LEVEL":             "debug", // the shell's value of a declared variable
		"MAX_ATTEMPTS":          "3",     // the file's Parameters
		"RETRY_BASE_DELAY":      "2s",    // the file's function entry beats the local default
		"ALLOW_PRIVATE_TARGETS": "true",  // a local default, declared or not
		"AWS_ENDPOINT_URL_SQS":  "http://127.0.0.1:4566",
		"AWS_LAMBDA_LOG_FORMAT": "JSON",
		"RETRY_MAX_DELAY":       "5s",        // a flag beats everything
		"ENDPOINT_SECRETS_KEY":  "local-key", // the local value of the template's secret
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["UNDECLARED_VAR"]; ok {
		t.Error("a shell variable the template does not declare reached the function")
	}
	if env["AWS_ACCESS_KEY_ID"] == "" {
		t.Error("no credentials for the SDK")
	}
}

// A local run's ENDPOINT_SECRETS_KEY is made once and kept in the state directory, so the
// endpoint secrets it stored stay readable after a restart; a shell that sets the variable
// needs no file.
func TestLocalSecrets(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), ".pushfn")
	noEnv := func(string) string { return "" }
	first, err := localSecrets(dir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	key := first["EndpointSecretsKey"]
	if len(key) < config.MinEndpointSecretsKeyChars {
		t.Fatalf("generated key of %d characters", len(key))
	}
	if _, err := endpoint.NewKeyring(key); err != nil {
		t.Fatalf("the generated key does not make a keyring: %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, endpointKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, info.Mode())
	}
	again, err := localSecrets(dir, noEnv)
	if err != nil || again["EndpointSecretsKey"] != key {
		t.Fatalf("second start: %v, key changed %v", err, again["EndpointSecretsKey"] != key)
	}
	other, _ := localSecrets(filepath.Join(t.TempDir(), ".pushfn"), noEnv)
	if other["EndpointSecretsKey"] == key {
		t.Error("two state directories got the same key")
	}
	set := filepath.Join(t.TempDir(), ".pushfn")
	if s, err := localSecrets(set, func(k string) string { return map[string]string{"ENDPOINT_SECRETS_KEY": "from-the-shell"}[k] }); err != nil || len(s) != 0 {
		t.Errorf("with ENDPOINT_SECRETS_KEY set: %v, %v; want no local value", s, err)
	}
	if _, err := os.Stat(filepath.Join(set, endpointKeyFile)); !os.IsNotExist(err) {
		t.Errorf("with ENDPOINT_SECRETS_KEY set a key file was written: %v", err)
	}
	short := filepath.Join(t.TempDir(), ".pushfn")
	if err := os.MkdirAll(short, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(short, endpointKeyFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localSecrets(short, noEnv); err == nil || !strings.Contains(err.Error(), "ENDPOINT_SECRETS_KEY") {
		t.Errorf("a short key file: %v, want an error naming ENDPOINT_SECRETS_KEY", err)
	}
}

func TestFunctionDir(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{"ApiFunction": "./functions/api", "DeliverFunction": "./functions/deliver", "RelayFunction": "./functions/relay"} {
		if got := functionDir(id); got != want {
			t.Errorf("functionDir(%s) = %s, want %s", id, got, want)
		}
	}
}

// The quick start keeps the two curl commands the end-to-end test runs.
func TestQuickstartCurls(t *testing.T) {
	t.Parallel()
	post, get := quickstartCurls(t, filepath.Join("..", "..", "README.md"))
	if !strings.Contains(post, "http://127.0.0.1:3000/v1/messages") || !strings.Contains(post, "http://127.0.0.1:9000/push") {
		t.Errorf("post: %s", post)
	}
	if get != "curl -s http://127.0.0.1:3000/v1/messages/<id>" {
		t.Errorf("get: %s", get)
	}
}

func TestAPIRoutes(t *testing.T) {
	t.Parallel()
	routes, err := apiRoutes(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"POST /v1/messages": true, "POST /v1/messages/batch": true, "GET /v1/messages/{id}": true, "$default": true,
		"POST /v1/endpoints": true, "GET /v1/endpoints": true, "GET /v1/endpoints/{id}": true, "PATCH /v1/endpoints/{id}": true,
		"DELETE /v1/endpoints/{id}": true, "GET /v1/endpoints/{id}/secret": true, "POST /v1/endpoints/{id}/secret/rotate": true,
		"GET /v1/endpoints/{id}/deliveries": true, "GET /v1/messages/{id}/deliveries": true, "POST /v1/messages/{id}/retry": true,
		"POST /v1/endpoints/{id}/recover": true, "GET /v1/recoveries/{id}": true}
	if len(routes) != len(want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
	for _, r := range routes {
		if !want[r.Key()] {
			t.Errorf("unexpected route %s", r.Key())
		}
	}
}

func TestParseRunFlags(t *testing.T) {
	t.Parallel()
	envFile := filepath.Join(t.TempDir(), "env.json")
	if err := os.WriteFile(envFile, []byte(`{"Parameters": {"LOG_LEVEL": "debug"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, o runOptions)
	}{
		{name: "defaults", check: func(t *testing.T, o runOptions) {
			if o.addr != "127.0.0.1:3000" || o.statusAddr != "127.0.0.1:3001" || o.table != defaultTable || o.queue != defaultQueue || o.apiProcesses != 4 || len(o.overrides) != 0 || o.template != "" {
				t.Errorf("%+v", o)
			}
		}},
		{name: "port and retry delays", args: []string{"--port", "0", "--retry-base-delay", "1s", "--retry-max-delay", "2s", "--env-vars", envFile}, check: func(t *testing.T, o runOptions) {
			if o.addr != "127.0.0.1:0" || o.overrides["RETRY_BASE_DELAY"] != "1s" || o.overrides["RETRY_MAX_DELAY"] != "2s" || o.envFile["Parameters"]["LOG_LEVEL"] != "debug" {
				t.Errorf("%+v", o)
			}
		}},
		{name: "template", args: []string{"--template", "other.yaml"}, check: func(t *testing.T, o runOptions) {
			if o.template != "other.yaml" {
				t.Errorf("template %q, want other.yaml", o.template)
			}
		}},
		{name: "status page on any free port of the API's host", args: []string{"--host", "::1", "--status-port", "0"}, check: func(t *testing.T, o runOptions) {
			if o.statusAddr != "[::1]:0" {
				t.Errorf("status address %q, want [::1]:0", o.statusAddr)
			}
		}},
		{name: "no status page", args: []string{"--status-port", "-1"}, check: func(t *testing.T, o runOptions) {
			if o.statusAddr != "" {
				t.Errorf("status address %q, want none", o.statusAddr)
			}
		}},
		{name: "status port out of range", args: []string{"--status-port", "65536"}, wantErr: true},
		{name: "status port below -1", args: []string{"--status-port", "-2"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
		{name: "argument", args: []string{"extra"}, wantErr: true},
		{name: "missing env file", args: []string{"--env-vars", filepath.Join(t.TempDir(), "none.json")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseRunFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseRunFlags(%q): %v, want error %v", tt.args, err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}
