package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/local/apigw"
	"github.com/pushfn/pushfn/shared/local/awsproxy"
	"github.com/pushfn/pushfn/shared/local/cost"
	"github.com/pushfn/pushfn/shared/local/esm"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
	"github.com/pushfn/pushfn/shared/local/receiver"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

const costUsage = `usage: pushfn cost [--messages 10000] [--retry-share 0.05] [--payload-bytes 256]

Runs a workload through the local stack (the real function binaries, the emulators) and prints
what it would cost in AWS per million pushes: messages posted to POST /v1/messages/batch, 500 a
request, to a receiver on loopback that answers a share of them 503 once (each retried once),
then 2xx. It counts every AWS request each function makes (their AWSRequests metrics) and checks
the counts against what the emulators served, measures each invocation's billed duration, and
prices it all with the table in shared/local/cost.`

// costOptions are the flags of `pushfn cost`.
type costOptions struct {
	messages     int
	retryShare   float64
	payloadBytes int
	batch        int
	utilisation  float64
	retryBase    time.Duration
	timeout      time.Duration
	template     string
	buildDir     string
	logPath      string
}

// The workload's bounds: a batch request holds at most 500 messages; a payload at most the
// default MAX_PAYLOAD_BYTES.
const (
	maxBatch        = 500
	minPayloadBytes = 32 // room for the JSON object that numbers the message
)

func parseCostFlags(args []string, stderr io.Writer) (costOptions, error) {
	fs := flag.NewFlagSet("cost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, costUsage); fs.PrintDefaults() }
	o := costOptions{}
	fs.IntVar(&o.messages, "messages", 10000, "messages to push")
	fs.Float64Var(&o.retryShare, "retry-share", 0.05, "share of the messages the receiver answers 503 once (0 to 1)")
	fs.IntVar(&o.payloadBytes, "payload-bytes", 256, "bytes of each message's payload")
	fs.IntVar(&o.batch, "batch", maxBatch, "messages per POST /v1/messages/batch request (1 to 500)")
	fs.Float64Var(&o.utilisation, "utilisation", 0.7, "the provisioned table's target utilisation (0 to 1)")
	fs.DurationVar(&o.retryBase, "retry-base-delay", 500*time.Millisecond, "RETRY_BASE_DELAY of the deliver function: short, so retried messages end soon")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up when the messages are not all final by then")
	fs.StringVar(&o.template, "template", "", "the SAM template (default: template.yaml at the repository root)")
	fs.StringVar(&o.buildDir, "build-dir", "", "where to build the functions (default .pushfn/build/cost in the repository)")
	fs.StringVar(&o.logPath, "log", "", "where to write the functions' output (default .pushfn/cost.log in the repository)")
	if err := fs.Parse(args); err != nil {
		return costOptions{}, exitError(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushfn cost: unexpected %q\n", fs.Arg(0))
		return costOptions{}, exitError(2)
	}
	var errs []error
	if o.messages < 1 {
		errs = append(errs, fmt.Errorf("--messages %d: at least 1", o.messages))
	}
	if o.retryShare < 0 || o.retryShare > 1 {
		errs = append(errs, fmt.Errorf("--retry-share %v: from 0 to 1", o.retryShare))
	}
	if o.payloadBytes < minPayloadBytes || o.payloadBytes > config.Defaults().MaxPayloadBytes {
		errs = append(errs, fmt.Errorf("--payload-bytes %d: from %d to %d", o.payloadBytes, minPayloadBytes, config.Defaults().MaxPayloadBytes))
	}
	if o.batch < 1 || o.batch > maxBatch {
		errs = append(errs, fmt.Errorf("--batch %d: from 1 to %d", o.batch, maxBatch))
	}
	if o.utilisation <= 0 || o.utilisation > 1 {
		errs = append(errs, fmt.Errorf("--utilisation %v: above 0, at most 1", o.utilisation))
	}
	if o.retryBase <= 0 || o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--retry-base-delay %s and --timeout %s: both positive", o.retryBase, o.timeout))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, "pushfn cost:", err)
		return costOptions{}, exitError(2)
	}
	return o, nil
}

// costCommand implements `pushfn cost`.
func costCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseCostFlags(args, stderr)
	if err != nil {
		return err
	}
	m, err := measure(ctx, o, stderr)
	if err != nil {
		return err
	}
	est, err := costEstimate(m, o)
	if err != nil {
		return err
	}
	m.print(stdout, o, est)
	if mismatches := m.mismatches(); len(mismatches) > 0 {
		return fmt.Errorf("%w: %s (the functions' output: %s)", errCountsDiffer, strings.Join(mismatches, "; "), m.logPath)
	}
	return nil
}

// costEstimate prices what m measured.
func costEstimate(m *measurement, o costOptions) (cost.Estimate, error) {
	return cost.Compute(m.usage, cost.USEast1, o.utilisation)
}

// errCountsDiffer says the functions reported other AWS requests than the emulators served.
var errCountsDiffer = errors.New("the functions' AWSRequests differ from what the emulators served")

// costFunctions are the functions the workload runs, in the order printed.
var costFunctions = []string{"ApiFunction", deliverFunction}

// esmCaller names the event source mapping's requests, which Lambda makes and SQS bills.
const esmCaller = "event source mapping"

// measurement is what a workload run measured.
type measurement struct {
	usage    cost.Usage
	reported map[string]map[string]int            // function → operation → AWSRequests the function wrote
	served   map[string]map[string]awsproxy.Count // caller → operation → what the emulators served it
	attempts int64                                // pushes the receiver took
	retried  int                                  // messages the receiver answered 503 once
	statuses map[message.Status]int
	logPath  string
}

// measure runs the workload of o through a local stack of its own (table and queues made for
// the run and deleted after it) and returns what it used.
func measure(ctx context.Context, o costOptions, stderr io.Writer) (*measurement, error) {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "pushfn cost")
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if o.template == "" {
		o.template = filepath.Join(root, "template.yaml")
	}
	if o.buildDir == "" {
		o.buildDir = filepath.Join(root, buildDir, "cost")
	}
	functions, mapping, err := loadTemplate(o.template)
	if err != nil {
		return nil, err
	}
	backends, err := startBackends(ctx, stderr)
	if err != nil {
		return nil, err
	}
	defer backends.stop(stderr)
	var tok [4]byte
	_, _ = rand.Read(tok[:])
	name := "pushfn-cost-" + hex.EncodeToString(tok[:])
	stack, err := backends.create(ctx, name, name, mapping.Visibility, mapping.MaxReceives)
	if err != nil {
		return nil, err
	}
	defer backends.drop(stack, stderr)
	if stack.Secrets, err = localSecrets(filepath.Join(root, stateDir), os.Getenv); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "pushfn cost: building the functions\n")
	paths, err := buildAll(ctx, root, o.buildDir, functions, costFunctions)
	if err != nil {
		return nil, err
	}
	bus, err := startEventBus(log)
	if err != nil {
		return nil, err
	}
	defer bus.close()

	// Each caller reaches each emulator through a counting proxy of its own.
	proxies, err := startProxies(map[string]string{"SQS": os.Getenv("AWS_ENDPOINT_URL_SQS"), "DynamoDB": os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "EventBridge": bus.url})
	defer closeProxies(proxies)
	if err != nil {
		return nil, err
	}

	if o.logPath == "" {
		o.logPath = filepath.Join(root, stateDir, "cost.log")
	}
	if err := os.MkdirAll(filepath.Dir(o.logPath), 0o755); err != nil {
		return nil, fmt.Errorf("the functions' log: %w", err)
	}
	logFile, err := os.Create(o.logPath)
	if err != nil {
		return nil, fmt.Errorf("the functions' log: %w", err)
	}
	defer logFile.Close()
	emf := &emfCounter{w: logFile, counts: map[string]map[string]int{}}
	bills := &billing{by: map[string]*cost.Function{}}

	local := localDefaults()
	local["EVENT_BUS_NAME"] = localEventBus
	overrides := map[string]string{"RETRY_BASE_DELAY": o.retryBase.String(), "RETRY_MAX_DELAY": (2 * o.retryBase).String()}
	pools := map[string]*lambdarun.Pool{}
	for id, size := range map[string]int{"ApiFunction": 4, deliverFunction: mapping.Concurrency} {
		fn := functions[id]
		environ := endpointsVia(os.Environ(), proxies[id])
		bills.by[id] = &cost.Function{Name: id, MemoryMB: fn.MemoryMB}
		pools[id] = lambdarun.NewPool(lambdarun.Config{
			Name: id, Path: paths[id], Timeout: fn.Timeout, MemoryMB: fn.MemoryMB, Region: stack.Region,
			Env: environment(fn, stack, local, overrides, nil, environ), Output: emf, Invoked: bills.add,
		}, size)
	}
	closePools := sync.OnceFunc(func() {
		for _, p := range pools {
			_ = p.Close()
		}
	})
	defer closePools()

	routes, err := apiRoutes(o.template)
	if err != nil {
		return nil, err
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serve the API: %w", err)
	}
	api := &http.Server{Handler: apigw.New(pools["ApiFunction"], routes, apigw.WithLogger(log)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = api.Serve(apiLn) }()
	defer api.Close()

	target, ok, flaky, err := startTargets()
	if err != nil {
		return nil, err
	}
	defer target.Close()

	esmSQS := sqs.NewFromConfig(backends.cfg, func(so *sqs.Options) { so.BaseEndpoint = aws.String(proxies[esmCaller]["SQS"].URL()) })
	mapper, err := esm.New(esmSQS, pools[deliverFunction], esm.Config{
		QueueURL: stack.QueueURL, Region: stack.Region, BatchSize: mapping.BatchSize, Window: mapping.Window,
		Concurrency: mapping.Concurrency, ReportBatchItemFailures: true, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("the event source mapping: %w", err)
	}
	polling, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	mapped := make(chan error, 1)
	go func() { mapped <- mapper.Run(polling) }()

	ddb := dynamodb.NewFromConfig(backends.cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	w := workload{opts: o, api: "http://" + apiLn.Addr().String(), target: "http://" + target.Addr().String()}
	fmt.Fprintf(stderr, "pushfn cost: pushing %d messages\n", o.messages)
	start := time.Now()
	apiRequests, retried, err := w.post(ctx)
	if err != nil {
		return nil, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := awaitFinal(waitCtx, ddb, stack.Table, o.messages); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)

	// Stop the event source mapping (its in-flight invocations end), then the functions, so that
	// every document they wrote is in, and nothing more is sent to the emulators.
	stopPolling()
	if err := <-mapped; err != nil {
		return nil, fmt.Errorf("the event source mapping: %w", err)
	}
	closePools()

	items, err := scanRecords(ctx, ddb, stack.Table)
	if err != nil {
		return nil, err
	}
	m := &measurement{reported: emf.snapshot(), served: map[string]map[string]awsproxy.Count{},
		attempts: ok.Counts().Received + flaky.Counts().Received, retried: retried, statuses: items.statuses, logPath: o.logPath}
	for caller, ps := range proxies {
		m.served[caller] = map[string]awsproxy.Count{}
		for _, p := range ps {
			maps.Copy(m.served[caller], p.Counts())
		}
	}
	m.usage = usageOf(m.served, items, bills.list(), bus.Total())
	m.usage.Elapsed, m.usage.APIRequests = elapsed, apiRequests
	return m, nil
}

// startProxies starts a counting proxy to each upstream (service: endpoint URL) for each
// function, and one to SQS for the event source mapping: caller → service → proxy. On an error,
// the proxies started are returned for closeProxies.
func startProxies(upstream map[string]string) (map[string]map[string]*awsproxy.Proxy, error) {
	proxies := map[string]map[string]*awsproxy.Proxy{}
	for _, caller := range append(slices.Clone(costFunctions), esmCaller) {
		proxies[caller] = map[string]*awsproxy.Proxy{}
		for service, up := range upstream {
			if caller == esmCaller && service != "SQS" {
				continue // the event source mapping calls SQS only
			}
			p, err := awsproxy.Start(service, up)
			if err != nil {
				return proxies, err
			}
			proxies[caller][service] = p
		}
	}
	return proxies, nil
}

func closeProxies(proxies map[string]map[string]*awsproxy.Proxy) {
	for _, ps := range proxies {
		for _, p := range ps {
			_ = p.Close()
		}
	}
}

// startTargets serves the workload's receivers on a loopback port: /ok answers 200, /flaky 503
// to the first push of each message, then 200.
func startTargets() (ln net.Listener, ok, flaky *receiver.Receiver, _ error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("serve the receiver: %w", err)
	}
	ok, flaky = &receiver.Receiver{}, &receiver.Receiver{FailFirst: 1, FailStatus: http.StatusServiceUnavailable}
	mux := http.NewServeMux()
	mux.Handle("/ok", ok)
	mux.Handle("/flaky", flaky)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // Serve ends when ln is closed
	return ln, ok, flaky, nil
}

// usageOf is what the requests served, the records left in the table, the functions' bills and the
// events put on the bus add up to.
func usageOf(served map[string]map[string]awsproxy.Count, items records, functions []cost.Function, events int) cost.Usage {
	// An item in a global secondary index (all attributes projected) is written and stored
	// again in each index it is in.
	copies := 1 + items.meanIndexes
	u := cost.Usage{
		Pushes: items.statuses[message.Delivered], Functions: functions, EventBridgeEvents: events,
		ItemBytes: items.meanBytes * copies, Retention: config.Defaults().RecordTTL,
	}
	for _, ops := range served {
		for op, c := range ops {
			service, name, _ := strings.Cut(op, ".")
			switch service {
			case "SQS":
				u.SQSRequests += c.Chunks64K
			case "DynamoDB":
				u.WriteUnits += float64(c.Requests) * writeUnits(name, items.meanBytes) * copies
				u.ReadUnits += float64(c.Requests) * readUnits(name)
			}
		}
	}
	return u
}

// writeUnits is the write request units one call of the DynamoDB operation op consumes on items
// of about itemBytes: one per KB of the item for the single-item writes pushfn makes (a write
// whose condition fails consumes them too).
func writeUnits(op string, itemBytes float64) float64 {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
		return max(1, float64(int((itemBytes+1023)/1024)))
	}
	return 0
}

// readUnits is the read request units one call of the DynamoDB operation op consumes, counted
// as a strongly consistent read of one item under 4 KB: an upper bound for GetItem, and a lower
// one for a Query or Scan that reads many.
func readUnits(op string) float64 {
	switch op {
	case "GetItem", "Query", "Scan":
		return 1
	}
	return 0
}

// endpointsVia returns environ with the AWS endpoints of the services pointed at their proxies.
func endpointsVia(environ []string, proxies map[string]*awsproxy.Proxy) []string {
	vars := map[string]string{"SQS": "AWS_ENDPOINT_URL_SQS", "DynamoDB": "AWS_ENDPOINT_URL_DYNAMODB", "EventBridge": "AWS_ENDPOINT_URL_EVENTBRIDGE"}
	out := slices.DeleteFunc(slices.Clone(environ), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(slices.Collect(maps.Values(vars)), k)
	})
	for service, p := range proxies {
		out = append(out, vars[service]+"="+p.URL())
	}
	return out
}

// workload posts the messages.
type workload struct {
	opts        costOptions
	api, target string
}

// post sends the messages in batches, message i to the flaky path when it is one of the retried
// share, and returns the API requests made (in API Gateway's 512 KB units) and the messages sent
// to be retried.
func (w workload) post(ctx context.Context) (requests, retried int, _ error) {
	client := &http.Client{Timeout: 2 * time.Minute}
	for first := 0; first < w.opts.messages; first += w.opts.batch {
		var msgs []map[string]any
		for i := first; i < min(first+w.opts.batch, w.opts.messages); i++ {
			path := "/ok"
			// Message i is retried when the share's running total passes a whole number at it.
			if int(float64(i+1)*w.opts.retryShare) > int(float64(i)*w.opts.retryShare) {
				path, retried = "/flaky", retried+1
			}
			// {"n":i,"pad":"xxx…"}, payloadBytes long.
			head := fmt.Sprintf(`{"n":%d,"pad":"`, i)
			payload := head + strings.Repeat("x", max(0, w.opts.payloadBytes-len(head)-2)) + `"}`
			msgs = append(msgs, map[string]any{"target": map[string]any{"url": w.target + path}, "payload": json.RawMessage(payload)})
		}
		body, err := json.Marshal(map[string]any{"messages": msgs})
		if err != nil {
			return 0, 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.api+"/v1/messages/batch", bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, fmt.Errorf("POST /v1/messages/batch: %w", err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return 0, 0, fmt.Errorf("POST /v1/messages/batch of messages %d to %d: %d %s", first, first+len(msgs)-1, resp.StatusCode, answer)
		}
		requests += (len(body) + len(answer) + apiUnit - 1) / apiUnit
	}
	return requests, retried, nil
}

// apiUnit is the request size API Gateway HTTP APIs meter by.
const apiUnit = 512 << 10

// awaitFinal waits until the table holds n records, every one in a final state.
func awaitFinal(ctx context.Context, ddb *dynamodb.Client, table string, n int) error {
	for {
		final, err := countFinal(ctx, ddb, table)
		if err != nil {
			return err
		}
		if final >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d messages final: %w", final, n, context.Cause(ctx))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// countFinal counts the records of table in a final state.
func countFinal(ctx context.Context, ddb *dynamodb.Client, table string) (int, error) {
	in := &dynamodb.ScanInput{
		TableName: aws.String(table), Select: dbtypes.SelectCount, ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("#s IN (:d, :f, :e)"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":d": str(message.Delivered), ":f": str(message.Failed), ":e": str(message.Expired)},
	}
	n := 0
	for p := dynamodb.NewScanPaginator(ddb, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("count the final records of %s: %w", table, err)
		}
		n += int(out.Count)
	}
	return n, nil
}

func str(s message.Status) dbtypes.AttributeValue {
	return &dbtypes.AttributeValueMemberS{Value: string(s)}
}

// records is what the table held at the end.
type records struct {
	statuses    map[message.Status]int
	meanBytes   float64 // per item, with DynamoDB's 100 bytes of overhead
	meanIndexes float64 // the global secondary indexes an item is in, on average
}

// scanRecords reads every record of table: their states, their mean size as DynamoDB bills it,
// and how many indexes they are in.
func scanRecords(ctx context.Context, ddb *dynamodb.Client, table string) (records, error) {
	r := records{statuses: map[message.Status]int{}}
	total, n, indexed := 0, 0, 0
	for p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return records{}, fmt.Errorf("read the records of %s: %w", table, err)
		}
		for _, item := range out.Items {
			if s, ok := item["status"].(*dbtypes.AttributeValueMemberS); ok {
				r.statuses[message.Status(s.Value)]++
			}
			total += cost.ItemSize(item) + cost.ItemOverhead
			n++
			for _, ix := range store.Indexes() {
				if item[ix.PartitionKey] != nil && item[ix.SortKey] != nil {
					indexed++
				}
			}
		}
	}
	if n > 0 {
		r.meanBytes, r.meanIndexes = float64(total)/float64(n), float64(indexed)/float64(n)
	}
	return r, nil
}

// drop deletes the table and queues of a run, reporting failures to stderr.
func (b *backends) drop(s localStack, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ddb := dynamodb.NewFromConfig(b.cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	if _, err := ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(s.Table)}); err != nil {
		fmt.Fprintf(stderr, "pushfn cost: delete table %s: %v\n", s.Table, err)
	}
	q := sqs.NewFromConfig(b.cfg)
	for _, name := range []string{s.Queue, s.Queue + queue.DLQSuffix} {
		url, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err == nil {
			_, err = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: url.QueueUrl})
		}
		if err != nil {
			fmt.Fprintf(stderr, "pushfn cost: delete queue %s: %v\n", name, err)
		}
	}
}

// emfCounter takes the functions' output, line by line, into a log file, and sums the
// AWSRequests of the EMF documents among the lines by function and operation.
type emfCounter struct {
	mu     sync.Mutex
	w      io.Writer
	rest   []byte
	counts map[string]map[string]int
}

func (e *emfCounter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.w.Write(p)
	e.rest = append(e.rest, p...)
	for {
		i := bytes.IndexByte(e.rest, '\n')
		if i < 0 {
			break
		}
		e.line(e.rest[:i])
		e.rest = e.rest[i+1:]
	}
	e.rest = slices.Clone(e.rest)
	return len(p), err
}

// line counts one line of output when it is an EMF document with AWSRequests.
func (e *emfCounter) line(l []byte) {
	if !bytes.Contains(l, []byte(`"`+metrics.AWSRequests+`"`)) {
		return
	}
	var doc struct {
		Function  string    `json:"function"`
		Operation string    `json:"operation"`
		Requests  *float64  `json:"AWSRequests"`
		AWS       *struct{} `json:"_aws"`
	}
	if json.Unmarshal(l, &doc) != nil || doc.AWS == nil || doc.Requests == nil {
		return
	}
	if e.counts[doc.Function] == nil {
		e.counts[doc.Function] = map[string]int{}
	}
	e.counts[doc.Function][doc.Operation] += int(*doc.Requests)
}

func (e *emfCounter) snapshot() map[string]map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]map[string]int{}
	for fn, ops := range e.counts {
		out[fn] = maps.Clone(ops)
	}
	return out
}

// billing sums the billed durations of each function's invocations.
type billing struct {
	mu sync.Mutex
	by map[string]*cost.Function
}

func (b *billing) add(inv lambdarun.Invoked) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.by[inv.Function]
	f.Invocations++
	f.Billed += inv.Billed()
}

func (b *billing) list() []cost.Function {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]cost.Function, 0, len(costFunctions))
	for _, id := range costFunctions {
		out = append(out, *b.by[id])
	}
	return out
}

// mismatches lists, for every function and operation, the counts the function reported and the
// emulators served when they differ.
func (m *measurement) mismatches() []string {
	var out []string
	for _, fn := range costFunctions {
		ops := map[string]bool{}
		for op := range m.reported[fn] {
			ops[op] = true
		}
		for op := range m.served[fn] {
			ops[op] = true
		}
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			if r, s := m.reported[fn][op], m.served[fn][op].Requests; r != s {
				out = append(out, fmt.Sprintf("%s %s: reported %d, served %d", fn, op, r, s))
			}
		}
	}
	return out
}

// print writes the report: the workload, the requests counted, and the cost per million pushes.
func (m *measurement) print(w io.Writer, o costOptions, e cost.Estimate) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	u := m.usage
	fmt.Fprintf(bw, "workload: %d messages through POST /v1/messages/batch (%d a request), %d-byte payloads, to a loopback receiver;\n", o.messages, o.batch, o.payloadBytes)
	fmt.Fprintf(bw, "          %d of them (%.1f %%) answered 503 once, then 2xx\n", m.retried, 100*float64(m.retried)/float64(o.messages))
	fmt.Fprintf(bw, "run:      %d delivered, %d failed, %d attempts, in %.1f s on this machine (%.0f pushes/s)\n",
		m.statuses[message.Delivered], m.statuses[message.Failed]+m.statuses[message.Expired], m.attempts, u.Elapsed.Seconds(), e.Rate)
	fmt.Fprintf(bw, "prices:   %s, Lambda on arm64, read %s from %s\n\n", cost.USEast1.Region, cost.USEast1.Read, cost.USEast1.Source)

	fmt.Fprintf(bw, "AWS requests          %-34s %10s %10s\n", "operation", "reported", "served")
	for _, caller := range append(slices.Clone(costFunctions), esmCaller) {
		ops := map[string]bool{}
		for op := range m.reported[caller] {
			ops[op] = true
		}
		for op := range m.served[caller] {
			ops[op] = true
		}
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			reported := fmt.Sprint(m.reported[caller][op])
			if caller == esmCaller {
				reported = "-" // Lambda's pollers, not a function: only the emulator counts them
			}
			fmt.Fprintf(bw, "  %-20s %-34s %10s %10d\n", caller, op, reported, m.served[caller][op].Requests)
		}
	}
	fmt.Fprintf(bw, "  (reported: the functions' AWSRequests metrics; served: counted in front of the emulators)\n\n")
	for _, f := range u.Functions {
		fmt.Fprintf(bw, "Lambda %-16s %6d invocations, %9.1f ms billed in all, %4d MB\n", f.Name, f.Invocations, float64(f.Billed.Microseconds())/1000, f.MemoryMB)
	}
	fmt.Fprintln(bw)
	cost.Print(bw, e, cost.USEast1)
}
