package main

import (
	"context"
	"fmt"
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

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// localFunction is what a local run needs of one function of the template.
type localFunction struct {
	LogicalID string
	Dir       string            // the package to build, such as ./functions/api
	Env       map[string]string // the template's variables
	Refs      map[string]string // variables that refer to a resource: QUEUE_URL → Queue
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
}

// Defaults of a local run.
const (
	defaultTable  = "pushfn-local"
	defaultQueue  = "pushfn-local"
	defaultRegion = "us-east-1"
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
