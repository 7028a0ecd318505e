package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// mappingSettings is the SQS event source mapping of the deliver function.
type mappingSettings struct {
	BatchSize   int
	Window      time.Duration
	Concurrency int
	Visibility  time.Duration // the queue's visibility timeout
	MaxReceives int           // receives before the dead-letter queue
}

// loadTemplate returns the template's functions and the deliver function's event source mapping.
func loadTemplate(root string) (map[string]localFunction, mappingSettings, error) {
	fns := map[string]localFunction{}
	for _, id := range []string{"ApiFunction", "DeliverFunction", "RelayFunction"} {
		fns[id] = localFunction{LogicalID: id, Dir: functionDir(id), Env: map[string]string{}, Refs: map[string]string{"QUEUE_URL": "Queue", "TABLE_NAME": "Table"}, Timeout: 30 * time.Second, MemoryMB: 256}
	}
	return fns, mappingSettings{BatchSize: 100, Window: time.Second, Concurrency: 2, Visibility: 180 * time.Second, MaxReceives: 15}, nil
}

// backends are the emulators a local run uses.
type backends struct {
	cfg     aws.Config
	started bool
}

// startBackends finds the emulators, or starts them.
func startBackends(ctx context.Context, stderr io.Writer, keep bool) (*backends, error) {
	for _, name := range []string{"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB"} {
		if !reachable(os.Getenv(name)) {
			return nil, fmt.Errorf("%w: %s=%q is not reachable", errNoEmulators, name, os.Getenv(name))
		}
	}
	cfg, err := awsConfig(ctx, defaultRegion)
	if err != nil {
		return nil, err
	}
	return &backends{cfg: cfg}, nil
}

// stop stops the emulators if startBackends started them.
func (b *backends) stop(stderr io.Writer) {}

// create makes the table and the queues when they do not exist. visibility is the queue's
// visibility timeout; a record is moved to the dead-letter queue after maxReceives receives.
func (b *backends) create(ctx context.Context, table, queueName string, visibility time.Duration, maxReceives int) (localStack, error) {
	if err := store.CreateTable(ctx, dynamodb.NewFromConfig(b.cfg), table); err != nil {
		return localStack{}, err
	}
	queueURL, _, err := queue.CreateQueues(ctx, sqs.NewFromConfig(b.cfg), queueName, maxReceives, visibility)
	if err != nil {
		return localStack{}, err
	}
	return localStack{Table: table, Queue: queueName, QueueURL: queueURL, Region: b.cfg.Region}, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// repoRoot returns the repository holding the working directory: the nearest directory at or
// above it with a template.yaml and a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "template.yaml")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no pushfn repository (template.yaml and go.mod) at or above the working directory")
		}
		dir = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
