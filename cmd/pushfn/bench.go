package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/sync/errgroup"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/deliver"
	"github.com/pushfn/pushfn/shared/local/template"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// benchCmd runs a benchmark: pushfn bench deliver --url URL [--ca FILE] --n N --size BYTES --conc C, or
// the same with pool for the plain worker-pool reference.
func benchCmd(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "pool" {
		return benchPool(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "deliver" {
		return errors.New("usage: pushfn bench deliver|pool --url URL [--ca FILE] --n N --size BYTES --conc C")
	}
	fs := flag.NewFlagSet("bench deliver", flag.ContinueOnError)
	target := fs.String("url", "http://127.0.0.1:9000/", "the receiver to push to")
	n := fs.Int("n", 10_000, "records in the batch")
	size := fs.Int("size", 1024, "payload bytes per record")
	conc := fs.Int("conc", 1_000, "concurrency, overall and per host")
	secret := fs.String("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "signing secret (empty: unsigned)")
	logLevel := fs.String("log-level", "warn", "handler log level (logs go to stderr)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed window to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file at the end")
	memoryMB := fs.Int("memory", 0, "the function's memory in MiB, for the GC settings the function makes (0: DeliverFunction's MemorySize in template.yaml, or 1024)")
	caFile := fs.String("ca", "", "PEM file of the certificates to trust for an https --url (such as the one pushfn receiver --tls --cert-out writes); none: the system's")
	storeKind := fs.String("store", "memory", "the record store: memory, or dynamodb (claims and results through the AWS SDK to the table at AWS_ENDPOINT_URL_DYNAMODB, such as DynamoDB Local from `pushfn emulators up`; the batch also runs once with memory, and the CPU per push is split between the push and the store calls)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *size < len(`{"d":""}`) || *n < 1 || *conc < 1 {
		return errors.New("--size must be at least 8, --n and --conc at least 1")
	}
	if *storeKind != "memory" && *storeKind != "dynamodb" {
		return fmt.Errorf("--store %q: want memory or dynamodb", *storeKind)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	roots, err := benchRoots(*caFile, *target)
	if err != nil {
		return err
	}

	// The garbage collector as the deployed function sets it for its memory size.
	if *memoryMB <= 0 {
		*memoryMB = 1024
		if t, err := template.Load("template.yaml"); err == nil {
			if f, ok := t.Function("DeliverFunction"); ok {
				*memoryMB = f.MemoryMB
			}
		}
	}
	gcPercent, memLimit := deliver.TuneGC(func(k string) string {
		if k == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" {
			return strconv.Itoa(*memoryMB)
		}
		return os.Getenv(k)
	})

	// Set up outside the timed window: the records, the SQS batch and the handler. The client is
	// new, so its connections are opened inside the window, as in a cold function.
	cfg := config.Defaults()
	cfg.MaxConcurrency, cfg.MaxPerHost = *conc, *conc
	cfg.AllowHTTPTargets, cfg.AllowPrivateTargets = true, true
	var keys [][]byte
	if *secret != "" {
		key, err := push.ParseSecret(*secret)
		if err != nil {
			return err
		}
		keys = [][]byte{key}
	}
	p := benchParams{target: *target, n: *n, size: *size, conc: *conc, cfg: cfg, keys: keys, roots: roots, level: level,
		cpuProfile: *cpuProfile, memProfile: *memProfile}
	mem, err := runBench(ctx, &store.Memory{}, p, *storeKind == "memory")
	if err != nil {
		return err
	}
	if *storeKind == "memory" {
		mem.print("", gcPercent, memLimit, *memoryMB)
		return nil
	}
	ddb, cleanup, err := benchTable(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	real, err := runBench(ctx, ddb, p, true)
	if err != nil {
		return err
	}
	mem.print("memory", gcPercent, memLimit, *memoryMB)
	real.print("dynamodb", gcPercent, memLimit, *memoryMB)
	perPush := func(r benchResult) float64 { return float64(r.cpu.Microseconds()) / float64(*n) }
	fmt.Printf("store=dynamodb msgs_per_s=%.0f cpu_us_per_push=%.1f push_us=%.1f store_us=%.1f (push: the same batch with the in-memory store; store: the difference)\n",
		float64(*n)/real.elapsed.Seconds(), perPush(real), perPush(mem), perPush(real)-perPush(mem))
	return nil
}

// benchParams is one benchmark batch.
type benchParams struct {
	target        string
	n, size, conc int
	cfg           config.Config
	keys          [][]byte
	roots         *x509.CertPool // nil: the system's
	level         slog.Level
	cpuProfile    string
	memProfile    string
}

// benchResult is what one timed batch did.
type benchResult struct {
	n, conc, ok, failures int
	elapsed, cpu          time.Duration
}

// runBench records a fresh batch in st and delivers it with a new client, so its connections
// are opened inside the timed window as in a cold function. profile says whether the window is
// the one to profile.
func runBench(ctx context.Context, st store.Store, p benchParams, profile bool) (benchResult, error) {
	ev, ids, err := batch(ctx, st, p.target, p.n, p.size)
	if err != nil {
		return benchResult{}, err
	}
	push.ReserveFDs(p.conc + push.FDMargin)
	client := push.NewClient(push.Options{MaxPerHost: p.conc, MaxIdleConns: p.conc, AllowPrivate: true, Keys: p.keys, RootCAs: p.roots, Version: "bench"})
	defer client.CloseIdleConnections() // after the window: a receiver being stopped need not wait for them
	h := &deliver.Handler{
		Store:  st,
		Sender: client,
		Config: p.cfg,
		Log:    slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: p.level})),
	}
	runtime.GC()
	if profile && p.cpuProfile != "" {
		f, err := os.Create(p.cpuProfile)
		if err != nil {
			return benchResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return benchResult{}, err
		}
	}

	cpu0 := cpuTime()
	start := time.Now()
	resp, err := h.Handle(ctx, ev)
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if profile && p.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if profile && p.memProfile != "" {
		f, err := os.Create(p.memProfile)
		if err != nil {
			return benchResult{}, err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return benchResult{}, err
		}
	}
	if err != nil {
		return benchResult{}, fmt.Errorf("handle: %w", err)
	}
	var ok atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, id := range ids {
		g.Go(func() error {
			if rec, err := st.Get(gctx, id); err == nil && rec.Status == message.Delivered {
				ok.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait()
	return benchResult{n: p.n, conc: p.conc, ok: int(ok.Load()), failures: len(resp.BatchItemFailures), elapsed: elapsed, cpu: cpu}, nil
}

// print writes r's figures: the process's memory, then the line the bench script reads.
func (r benchResult) print(store string, gcPercent int, memLimit int64, memoryMB int) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("batch_item_failures=%d maxrss_mib=%.1f heap_sys_mib=%.1f stack_sys_mib=%.1f gc_cycles=%d gogc=%d memory_limit_mib=%d (function memory %d MiB)\n", r.failures,
		float64(ru.Maxrss)/1024, float64(ms.HeapSys)/(1<<20), float64(ms.StackSys)/(1<<20), ms.NumGC, gcPercent, memLimit>>20, memoryMB)
	if store != "" {
		store = " store=" + store
	}
	fmt.Printf("peer=pushfn%s n=%d conc=%d seconds=%.3f msgs_per_s=%.0f ok=%d failed=%d cpu_s=%.3f\n",
		store, r.n, r.conc, r.elapsed.Seconds(), float64(r.n)/r.elapsed.Seconds(), r.ok, r.n-r.ok, r.cpu.Seconds())
}

// benchTable creates a table of its own on the DynamoDB that AWS_ENDPOINT_URL_DYNAMODB names
// (DynamoDB Local) and returns the store on it and a function that deletes it.
func benchTable(ctx context.Context) (*store.DynamoDB, func(), error) {
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		return nil, nil, errors.New(`--store dynamodb: set AWS_ENDPOINT_URL_DYNAMODB (eval "$(go run ./cmd/pushfn emulators env)" after make emulators-up)`)
	}
	cfg, err := localConfig(ctx, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	client := dynamodb.NewFromConfig(cfg)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pushfn-bench-" + hex.EncodeToString(b[:])
	if err := store.CreateTable(ctx, client, name); err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTable(dctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	}
	return store.NewDynamoDB(client, name, 0), cleanup, nil
}

// batch creates n accepted records and the SQS batch carrying them, each with a distinct id and
// a JSON payload of exactly size bytes.
func batch(ctx context.Context, s store.Store, target string, n, size int) (events.SQSEvent, []string, error) {
	payload := json.RawMessage(`{"d":"` + strings.Repeat("x", size-len(`{"d":""}`)) + `"}`)
	now := time.Now()
	ev := events.SQSEvent{Records: make([]events.SQSMessage, n)}
	ids := make([]string, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32) // a real table answers in milliseconds: create in parallel, outside the window
	for i := range n {
		id := message.NewID(now)
		ids[i] = id
		g.Go(func() error {
			if err := s.Create(gctx, message.Record{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
				return fmt.Errorf("create record: %w", err)
			}
			return nil
		})
		body, err := json.Marshal(message.Envelope{ID: id, Target: message.Target{URL: target}, Payload: payload})
		if err != nil {
			return ev, nil, fmt.Errorf("encode envelope: %w", err)
		}
		ev.Records[i] = events.SQSMessage{MessageId: fmt.Sprint("bench-", i), ReceiptHandle: fmt.Sprint("rh-", i), Body: string(body)}
	}
	if err := g.Wait(); err != nil {
		return ev, nil, err
	}
	return ev, ids, nil
}

// benchRoots returns the roots of the --ca file caFile for the bench's --url target, refusing
// one given for a target that is not https.
func benchRoots(caFile, target string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	if u, err := url.Parse(target); err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("%w: --ca is for an https --url, not %q", errUsage, target)
	}
	return loadRoots(caFile)
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
