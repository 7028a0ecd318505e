package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/apigw"
	"github.com/pushfn/pushfn/shared/local/esm"
	"github.com/pushfn/pushfn/shared/local/eventbus"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

const runUsage = `usage: pushfn run [--port 3000] [--status-port 3001] [--env-vars env.json]

Runs pushfn on this machine: the emulators (started when not already running), the table and
queues, the api function served as API Gateway would at http://127.0.0.1:<port>, the
deliver function fed from the queue as the SQS event source mapping would, and a live status
page at http://127.0.0.1:<status-port>. Ctrl-C stops it all.`

// runOptions are the flags of `pushfn run`.
type runOptions struct {
	addr         string
	statusAddr   string // "" for no status page
	table, queue string
	envFile      lambdarun.EnvFile
	apiProcesses int
	buildDir     string
	template     string            // the SAM template; empty: template.yaml at the repository root
	overrides    map[string]string // variables the flags set for every function
}

func parseRunFlags(args []string, stderr io.Writer) (runOptions, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, runUsage); fs.PrintDefaults() }
	host := fs.String("host", "127.0.0.1", "the address to serve the API on")
	port := fs.Int("port", 3000, "the port to serve the API on")
	statusPort := fs.Int("status-port", defaultStatusPort, "the port to serve the status page on, on the API's host: 0 for any free one, -1 for none")
	table := fs.String("table", defaultTable, "the DynamoDB table")
	queueName := fs.String("queue", defaultQueue, "the SQS queue")
	envVars := fs.String("env-vars", "", "a JSON file of variables, in the sam local --env-vars format")
	apiProcesses := fs.Int("api-processes", 4, "api function processes: requests served at once")
	builds := fs.String("build-dir", "", "where to build the functions (default .pushfn/build/run in the repository)")
	retryBase := fs.String("retry-base-delay", "", "RETRY_BASE_DELAY for the deliver function (the template's when empty)")
	retryMax := fs.String("retry-max-delay", "", "RETRY_MAX_DELAY for the deliver function (the template's when empty)")
	templatePath := fs.String("template", "", "the SAM template whose functions, queue and mapping settings to run (default: template.yaml at the repository root)")
	if err := fs.Parse(args); err != nil {
		return runOptions{}, exitError(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushfn run: unexpected %q\n", fs.Arg(0))
		return runOptions{}, exitError(2)
	}
	o := runOptions{
		addr: net.JoinHostPort(*host, strconv.Itoa(*port)), table: *table, queue: *queueName,
		apiProcesses: *apiProcesses, buildDir: *builds, template: *templatePath, overrides: map[string]string{},
	}
	var err error
	if o.statusAddr, err = statusAddr(*host, *statusPort); err != nil {
		fmt.Fprintln(stderr, "pushfn run:", err)
		return runOptions{}, exitError(2)
	}
	if *retryBase != "" {
		o.overrides["RETRY_BASE_DELAY"] = *retryBase
	}
	if *retryMax != "" {
		o.overrides["RETRY_MAX_DELAY"] = *retryMax
	}
	if *envVars != "" {
		if o.envFile, err = lambdarun.ReadEnvFile(*envVars); err != nil {
			return runOptions{}, err
		}
	}
	return o, nil
}

// runCommand implements `pushfn run`.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopWithParent()
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("component", "pushfn run")

	root, err := repoRoot()
	if err != nil {
		return err
	}
	if opts.template == "" {
		opts.template = filepath.Join(root, "template.yaml")
	}
	functions, mapping, err := loadTemplate(opts.template)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("serve the API: %w (another pushfn run? choose another --port)", err)
	}
	defer ln.Close()
	page, err := listenStatus(opts.statusAddr)
	if err != nil {
		return err
	}
	defer page.close()

	backends, err := startBackends(ctx, stderr)
	if err != nil {
		return err
	}
	defer backends.stop(stderr)
	stack, err := backends.create(ctx, opts.table, opts.queue, mapping.Visibility, mapping.MaxReceives)
	if err != nil {
		return err
	}
	if stack.Secrets, err = localSecrets(filepath.Join(root, stateDir), os.Getenv); err != nil {
		return err
	}

	if opts.buildDir == "" {
		opts.buildDir = filepath.Join(root, buildDir, "run")
	}
	paths, err := buildAll(ctx, root, opts.buildDir, functions, []string{"ApiFunction", "DeliverFunction"})
	if err != nil {
		return err
	}
	bus, err := startEventBus(log)
	if err != nil {
		return err
	}
	defer bus.close()
	local := localDefaults()
	local["EVENT_BUS_NAME"] = localEventBus // the shell or --env-vars may set another, or none
	environ := append(os.Environ(), "AWS_ENDPOINT_URL_EVENTBRIDGE="+bus.url)
	pool := func(id string, size int) *lambdarun.Pool {
		fn := functions[id]
		return lambdarun.NewPool(lambdarun.Config{
			Name: id, Path: paths[id], Timeout: fn.Timeout, MemoryMB: fn.MemoryMB, Region: stack.Region,
			Env: environment(fn, stack, local, opts.overrides, opts.envFile, environ), Output: page.tap(stderr),
		}, size)
	}
	api := pool("ApiFunction", opts.apiProcesses)
	defer api.Close()
	deliver := pool("DeliverFunction", mapping.Concurrency)
	defer deliver.Close()

	routes, err := apiRoutes(opts.template)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: apigw.New(api, routes, apigw.WithLogger(log)), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	m, err := esm.New(sqs.NewFromConfig(backends.cfg), deliver, esm.Config{
		QueueURL: stack.QueueURL, Region: stack.Region, BatchSize: mapping.BatchSize, Window: mapping.Window,
		Concurrency: mapping.Concurrency, ReportBatchItemFailures: true, Logger: log,
	})
	if err != nil {
		return err
	}
	polling, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	mapped := make(chan error, 1)
	go func() { mapped <- m.Run(polling) }()

	page.serve(backends.cfg, stack.Table, bus.Server)
	banner(stdout, "http://"+ln.Addr().String(), stack, mapping, local, bus.url, page.url())
	var failure error
	select {
	case <-ctx.Done():
	case err := <-served:
		failure = fmt.Errorf("the API server stopped: %w", err)
	case err := <-mapped:
		failure = fmt.Errorf("the event source mapping stopped: %w", err)
		mapped <- nil
	}
	fmt.Fprintln(stderr, "pushfn run: stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	stopPolling()
	// Deliveries in flight may finish; past the grace period their processes are killed and
	// SQS redelivers their records on the next run.
	select {
	case <-mapped:
	case <-time.After(10 * time.Second):
		_ = deliver.Close()
		<-mapped
	}
	return failure
}

// buildAll builds the functions at once.
func buildAll(ctx context.Context, root, dir string, functions map[string]localFunction, ids []string) (map[string]string, error) {
	paths := make(map[string]string, len(ids))
	errs := make([]error, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, id := range ids {
		fn, ok := functions[id]
		if !ok {
			return nil, fmt.Errorf("no %s in the template", id)
		}
		wg.Go(func() {
			path, err := build(ctx, root, dir, fn)
			mu.Lock()
			paths[id], errs[i] = path, err
			mu.Unlock()
		})
	}
	wg.Wait()
	return paths, errors.Join(errs...)
}

// apiRoutes returns the HTTP API's routes: the RouteKey of each AWS::ApiGatewayV2::Route in the
// template at path, such as "GET /v1/messages/{id}".
func apiRoutes(path string) ([]apigw.Route, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	var routes []apigw.Route
	for line := range strings.SplitSeq(string(raw), "\n") {
		key, ok := strings.CutPrefix(strings.TrimSpace(line), "RouteKey:")
		if !ok {
			continue
		}
		key = strings.Trim(strings.TrimSpace(key), `"'`)
		if key == "$default" {
			routes = append(routes, apigw.Route{Path: "$default"})
			continue
		}
		method, path, ok := strings.Cut(key, " ")
		if !ok {
			return nil, fmt.Errorf("template.yaml: route key %q is not METHOD /path", key)
		}
		routes = append(routes, apigw.Route{Method: method, Path: path})
	}
	if len(routes) == 0 {
		return nil, errors.New("template.yaml: no RouteKey for the HTTP API")
	}
	return routes, nil
}

// localEventBus is the EVENT_BUS_NAME of a local run's functions.
const localEventBus = "pushfn-local"

// localBus is a local run's EventBridge: an eventbus.Server on a loopback port.
type localBus struct {
	*eventbus.Server
	url   string
	close func()
}

// startEventBus serves a PutEvents endpoint on a loopback port, logging each event to log.
func startEventBus(log *slog.Logger) (*localBus, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serve the local EventBridge endpoint: %w", err)
	}
	srv := &eventbus.Server{Log: log}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return &localBus{Server: srv, url: "http://" + ln.Addr().String(), close: func() { _ = hs.Close() }}, nil
}

func banner(w io.Writer, apiURL string, stack localStack, mapping mappingSettings, local map[string]string, busURL, statusURL string) {
	statusLine := "off (--status-port -1)"
	if statusURL != "" {
		statusLine = statusURL + "  (live figures and charts; the same as JSON at " + statusURL + "/status.json)"
	}
	fmt.Fprintf(w, `
pushfn is running locally
  API        %[1]s  (ApiFunction, as API Gateway HTTP API)
  delivery   DeliverFunction fed from SQS queue %[2]s (batch size %[3]d, window %[4]s, %[5]d at once)
  relay      pushfn invoke RelayFunction -e events/eventbridge.json
  state      DynamoDB table %[6]s
  events     operational events on EventBridge bus %[9]s, served at %[10]s: each one a log line
  status     %[11]s
  local only ALLOW_PRIVATE_TARGETS=%[7]s ALLOW_HTTP_TARGETS=%[8]s: loopback and plain-http targets are allowed

Try it (in another terminal):
  go run ./cmd/pushfn receiver
  curl -s %[1]s/v1/messages -H 'Content-Type: application/json' \
    -d '{"target":{"url":"http://127.0.0.1:9000/push"},"payload":{"user_id":"1","message":"Hello"}}'
  curl -s %[1]s/v1/messages/<id>

Ctrl-C stops everything pushfn run started.
`, apiURL, stack.Queue, mapping.BatchSize, mapping.Window, mapping.Concurrency, stack.Table,
		local["ALLOW_PRIVATE_TARGETS"], local["ALLOW_HTTP_TARGETS"], local["EVENT_BUS_NAME"], busURL, statusLine)
}
