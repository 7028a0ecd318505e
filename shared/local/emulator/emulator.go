// Package emulator installs, starts, checks and stops the local AWS emulators:
// fauxqs for SQS and DynamoDB Local for DynamoDB, each a detached process tracked by a PID file.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package emulator

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environment variables that override the default ports.
const (
	EnvSQSPort      = "PUSHFN_SQS_PORT"
	EnvDynamoDBPort = "PUSHFN_DYNAMODB_PORT"
)

// Default ports, those the emulators' own documentation uses.
const (
	DefaultSQSPort      = 4566
	DefaultDynamoDBPort = 8000
)

// Names of the emulators, as used in PID and log file names.
const (
	SQS      = "sqs"
	DynamoDB = "dynamodb"
)

// Options says where the emulators live and listen. The zero value of a field means its default.
type Options struct {
	Root         string        // repository root, holding dev/ (default: found from the working directory)
	StateDir     string        // PID and log files (default: Root/.pushfn)
	SQSPort      int           // default DefaultSQSPort
	DynamoDBPort int           // default DefaultDynamoDBPort
	Timeout      time.Duration // how long Up waits for each emulator to answer (default 90 s)
	Grace        time.Duration // how long Down waits after SIGTERM before SIGKILL (default 5 s)
	Progress     io.Writer     // where Up reports what it installs and starts (default: discarded)
}

// OptionsFromEnv returns Options with the ports read through getenv (PUSHFN_SQS_PORT,
// PUSHFN_DYNAMODB_PORT) and the root found from the working directory.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	var o Options
	var errs []error
	for _, p := range []struct {
		name string
		port *int
	}{{EnvSQSPort, &o.SQSPort}, {EnvDynamoDBPort, &o.DynamoDBPort}} {
		v := strings.TrimSpace(getenv(p.name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s=%q: not a port from 1 to 65535", p.name, v))
			continue
		}
		*p.port = n
	}
	if err := errors.Join(errs...); err != nil {
		return Options{}, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return Options{}, fmt.Errorf("working directory: %w", err)
	}
	if o.Root, err = FindRoot(wd); err != nil {
		return Options{}, err
	}
	return o, nil
}

// FindRoot returns the nearest directory at or above dir that holds dev/package-lock.json.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "dev", "package-lock.json")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("find repository root: no dev/package-lock.json here or above; run from the pushfn repository")
}

func (o Options) withDefaults() (Options, error) {
	if o.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return o, fmt.Errorf("working directory: %w", err)
		}
		if o.Root, err = FindRoot(wd); err != nil {
			return o, err
		}
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.Root, ".pushfn")
	}
	o = o.withPorts()
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	if o.Grace == 0 {
		o.Grace = 5 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// SQSEndpoint is the value for AWS_ENDPOINT_URL_SQS.
func (o Options) SQSEndpoint() string { return endpoint(o.withPorts().SQSPort) }

// DynamoDBEndpoint is the value for AWS_ENDPOINT_URL_DYNAMODB.
func (o Options) DynamoDBEndpoint() string { return endpoint(o.withPorts().DynamoDBPort) }

// Env returns the environment variables that point the AWS SDK at the emulators.
func (o Options) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_SQS=" + o.SQSEndpoint(),
		"AWS_ENDPOINT_URL_DYNAMODB=" + o.DynamoDBEndpoint(),
	}
}

func (o Options) withPorts() Options {
	if o.SQSPort == 0 {
		o.SQSPort = DefaultSQSPort
	}
	if o.DynamoDBPort == 0 {
		o.DynamoDBPort = DefaultDynamoDBPort
	}
	return o
}

func endpoint(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// State describes one emulator.
type State struct {
	Name     string // SQS or DynamoDB
	Endpoint string // http://127.0.0.1:port
	PID      int    // 0 when not started by us
	Running  bool   // answering API calls on Endpoint
	Started  bool   // started by this call to Up (false when it already ran)
	External bool   // answering, but not a process of ours (no PID file): Down leaves it alone
	Log      string // path of its log file
}

func (s State) String() string {
	switch {
	case s.Running && s.External:
		return fmt.Sprintf("%-8s running at %s (not started by pushfn)", s.Name, s.Endpoint)
	case s.Running && s.Started:
		return fmt.Sprintf("%-8s started at %s (pid %d, log %s)", s.Name, s.Endpoint, s.PID, s.Log)
	case s.Running:
		return fmt.Sprintf("%-8s running at %s (pid %d, log %s)", s.Name, s.Endpoint, s.PID, s.Log)
	case s.PID != 0:
		return fmt.Sprintf("%-8s not answering at %s (pid %d, log %s)", s.Name, s.Endpoint, s.PID, s.Log)
	default:
		return fmt.Sprintf("%-8s stopped (%s)", s.Name, s.Endpoint)
	}
}
