package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// localFunction is what a local run needs of one function of the template.
type localFunction struct {
	LogicalID string
	Dir       string            // the package to build, such as ./functions/api
	Env       map[string]string // the template's variables
	Refs      map[string]string // variables that refer to a resource: QUEUE_URL → Queue
	Secrets   map[string]string // variables resolved from a secret: ENDPOINT_SECRETS_KEY → EndpointSecretsKey
	Timeout   time.Duration
	MemoryMB  int
	LogFormat string // JSON or Text
}

// localStack names the resources a local run uses.
type localStack struct {
	Table    string
	Queue    string
	QueueURL string
	Region   string
	Secrets  map[string]string // a template secret's logical id → its local value
}

// Defaults of a local run.
const (
	defaultTable  = "pushfn-local"
	defaultQueue  = "pushfn-local"
	defaultRegion = "us-east-1"
	stateDir      = ".pushfn"       // under the repository: the emulators' and local runs' state
	buildDir      = ".pushfn/build" // under the repository
)

// functionDir returns the package of a function: ApiFunction is ./functions/api.
func functionDir(logicalID string) string {
	return "./functions/" + strings.ToLower(strings.TrimSuffix(logicalID, "Function"))
}

// build compiles a function's bootstrap for this machine into dir, as `sam build` would for
// Lambda.
func build(ctx context.Context, root, dir string, fn localFunction) (string, error) {
	out, err := filepath.Abs(filepath.Join(dir, fn.LogicalID, "bootstrap"))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, fn.Dir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s (%s): %w\n%s", fn.LogicalID, fn.Dir, err, msg)
	}
	return out, nil
}

// environment returns a function's variables for a local run: the template's, with the local
// stack's names and local defaults, then the shell's (environ) and the env vars file's values
// as sam local applies them, then the command's flags (overrides), and what the process needs to
// reach the emulators.
func environment(fn localFunction, stack localStack, local, overrides map[string]string, file lambdarun.EnvFile, environ []string) map[string]string {
	shell := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			shell[k] = v
		}
	}
	lookup := func(k string) (string, bool) { v, ok := shell[k]; return v, ok }
	declared := make(map[string]string, len(fn.Env)+len(local)+2)
	for k, v := range fn.Env {
		declared[k] = v
	}
	for name, resource := range fn.Refs {
		switch resource {
		case "Queue":
			declared[name] = stack.QueueURL
		case "Table":
			declared[name] = stack.Table
		}
	}
	for name, secret := range fn.Secrets {
		declared[name] = stack.Secrets[secret]
	}
	for k, v := range local {
		declared[k] = v
	}
	env := lambdarun.Resolve(fn.LogicalID, declared, lookup, file)
	for k, v := range overrides {
		env[k] = v
	}
	for k, v := range lambdarun.Passthrough(environ) {
		env[k] = v
	}
	if fn.LogFormat != "" {
		env["AWS_LAMBDA_LOG_FORMAT"] = fn.LogFormat
	}
	// The emulators accept any credentials; the SDK needs some.
	if env["AWS_ACCESS_KEY_ID"] == "" && env["AWS_PROFILE"] == "" {
		env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "local", "local"
	}
	return env
}

// endpointKeyFile holds a local run's ENDPOINT_SECRETS_KEY, in the state directory.
const endpointKeyFile = "endpoint-secrets-key"

// localSecrets returns the local values of the template's secrets: the EndpointSecretsKey of
// stateDir, generated the first time and kept, so the endpoint secrets a local run stored stay
// readable when it restarts. A shell that sets ENDPOINT_SECRETS_KEY needs none: its value wins.
func localSecrets(stateDir string, getenv func(string) string) (map[string]string, error) {
	if getenv(config.EnvEndpointSecretsKey) != "" {
		return map[string]string{}, nil
	}
	key, err := localKey(filepath.Join(stateDir, endpointKeyFile))
	if err != nil {
		return nil, fmt.Errorf("the local %s: %w", config.EnvEndpointSecretsKey, err)
	}
	return map[string]string{"EndpointSecretsKey": key}, nil
}

// localKey reads the key at path, or writes a new random one there (readable by its owner
// only) when there is none.
func localKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		key := strings.TrimSpace(string(b))
		if len(key) < config.MinEndpointSecretsKeyChars {
			return "", fmt.Errorf("%s holds %d characters, fewer than %d: delete it to have a new key made (endpoints stored under the old one become unreadable)", path, len(key), config.MinEndpointSecretsKeyChars)
		}
		return key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	key := base64.RawURLEncoding.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return localKey(path) // another run made it first
	} else if err != nil {
		return "", err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return key, f.Close()
}

// awsConfig returns the SDK configuration of a local run: the emulators' endpoints come from
// AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB, as in the functions.
func awsConfig(ctx context.Context, region string) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

// reachable reports whether something listens at an endpoint URL.
func reachable(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// exitError ends the command with a status and no further message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
