package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/emulator"
	"github.com/pushfn/pushfn/shared/local/template"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// mappingSettings is the deliver function's SQS event source mapping and its queue.
type mappingSettings struct {
	BatchSize   int
	Window      time.Duration
	Concurrency int
	Visibility  time.Duration // the queue's visibility timeout
	MaxReceives int           // receives before the dead-letter queue
}

// deliverFunction is the function the event source mapping feeds.
const deliverFunction = "DeliverFunction"

// loadTemplate reads the functions of the SAM template at path and the deliver function's event
// source mapping.
func loadTemplate(path string) (map[string]localFunction, mappingSettings, error) {
	tm, err := template.Load(path)
	if err != nil {
		return nil, mappingSettings{}, err
	}
	fns := make(map[string]localFunction, len(tm.Functions))
	for _, f := range tm.Functions {
		fns[f.LogicalID] = localFunction{
			LogicalID: f.LogicalID, Dir: functionDir(f.LogicalID), Env: f.Env, Refs: f.Refs, Secrets: f.Secrets,
			Timeout: f.Timeout, MemoryMB: f.MemoryMB, LogFormat: f.LogFormat,
		}
	}
	for _, m := range tm.Mappings {
		if m.Function != deliverFunction {
			continue
		}
		q, ok := tm.Queue(m.Queue)
		if !ok || q.MaxReceiveCount == 0 {
			return nil, mappingSettings{}, fmt.Errorf("template.yaml: no queue %q with a redrive policy for %s", m.Queue, m.LogicalID)
		}
		s := mappingSettings{
			BatchSize: m.BatchSize, Window: m.BatchingWindow, Concurrency: m.MaximumConcurrency,
			Visibility: q.VisibilityTimeout, MaxReceives: q.MaxReceiveCount,
		}
		if s.BatchSize == 0 {
			s.BatchSize = 10 // Lambda's default for SQS
		}
		if s.Concurrency == 0 {
			s.Concurrency = 5 // Lambda starts with five pollers
		}
		return fns, s, nil
	}
	return nil, mappingSettings{}, fmt.Errorf("template.yaml: no event source mapping feeds %s", deliverFunction)
}

// backends are the emulators a local run uses.
type backends struct {
	cfg     aws.Config
	opts    emulator.Options
	started []string // emulators this run started, to stop at the end
}

// startBackends uses the emulators AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB name when
// both answer, else starts pushfn's emulators (installing them if needed) and points this
// process and the functions at them.
func startBackends(ctx context.Context, stderr io.Writer) (*backends, error) {
	b := &backends{}
	sqsURL, ddbURL := os.Getenv("AWS_ENDPOINT_URL_SQS"), os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if sqsURL == "" || ddbURL == "" || !reachable(sqsURL) || !reachable(ddbURL) {
		if sqsURL != "" || ddbURL != "" {
			fmt.Fprintf(stderr, "AWS_ENDPOINT_URL_SQS=%q and AWS_ENDPOINT_URL_DYNAMODB=%q do not both answer: using pushfn's emulators\n", sqsURL, ddbURL)
		}
		o, err := emulator.OptionsFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		o.Progress = stderr
		b.opts = o
		states, err := emulator.Up(ctx, o)
		for _, st := range states {
			if st.Started {
				b.started = append(b.started, strings.ToLower(st.Name))
			}
			fmt.Fprintln(stderr, st)
		}
		if err != nil {
			b.stop(stderr)
			return nil, fmt.Errorf("start the emulators: %w", err)
		}
		for _, kv := range o.Env() {
			k, v, _ := strings.Cut(kv, "=")
			if err := os.Setenv(k, v); err != nil {
				return nil, err
			}
		}
	}
	cfg, err := awsConfig(ctx, defaultRegion)
	if err != nil {
		b.stop(stderr)
		return nil, err
	}
	b.cfg = cfg
	return b, nil
}

// stop stops the emulators startBackends started, and only those.
func (b *backends) stop(stderr io.Writer) {
	if len(b.started) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := emulator.Down(ctx, b.opts, b.started...); err != nil {
		fmt.Fprintf(stderr, "stop the emulators: %v\n", err)
		return
	}
	fmt.Fprintf(stderr, "stopped the emulators this run started: %s\n", strings.Join(b.started, ", "))
	b.started = nil
}

// create makes the table and the queues when they do not exist. visibility is the queue's
// visibility timeout; a record is moved to the dead-letter queue after maxReceives receives.
func (b *backends) create(ctx context.Context, table, queueName string, visibility time.Duration, maxReceives int) (localStack, error) {
	ddb := dynamodb.NewFromConfig(b.cfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true // DynamoDB Local sends no CRC32 the SDK accepts
	})
	if err := store.CreateTable(ctx, ddb, table); err != nil {
		return localStack{}, err
	}
	queueURL, _, err := queue.CreateQueues(ctx, sqs.NewFromConfig(b.cfg), queueName, maxReceives, visibility)
	if err != nil {
		return localStack{}, err
	}
	return localStack{Table: table, Queue: queueName, QueueURL: queueURL, Region: b.cfg.Region}, nil
}

// repoRoot returns the repository holding the working directory.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return emulator.FindRoot(wd)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
