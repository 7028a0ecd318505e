package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/deliver"
	"github.com/pushfn/pushfn/shared/local/template"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// benchCmd runs a benchmark: pushfn bench deliver --url URL --n N --size BYTES --conc C, or
// the same with pool for the plain worker-pool reference.
func benchCmd(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "pool" {
		return benchPool(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "deliver" {
		return errors.New("usage: pushfn bench deliver|pool --url URL --n N --size BYTES --conc C")
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
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *size < len(`{"d":""}`) || *n < 1 || *conc < 1 {
		return errors.New("--size must be at least 8, --n and --conc at least 1")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
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
	mem := &store.Memory{}
	ev, ids, err := batch(ctx, mem, *target, *n, *size)
	if err != nil {
		return err
	}
	push.ReserveFDs(*conc + push.FDMargin)
	h := &deliver.Handler{
		Store:  mem,
		Sender: push.NewClient(push.Options{MaxPerHost: *conc, MaxIdleConns: *conc, AllowPrivate: true, Keys: keys, Version: "bench"}),
		Config: cfg,
		Log:    slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	runtime.GC()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}

	cpu0 := cpuTime()
	start := time.Now()
	resp, err := h.Handle(ctx, ev)
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("handle: %w", err)
	}

	ok := 0
	for _, id := range ids {
		if rec, err := mem.Get(ctx, id); err == nil && rec.Status == message.Delivered {
			ok++
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("batch_item_failures=%d maxrss_mib=%.1f heap_sys_mib=%.1f stack_sys_mib=%.1f gc_cycles=%d gogc=%d memory_limit_mib=%d (function memory %d MiB)\n", len(resp.BatchItemFailures),
		float64(ru.Maxrss)/1024, float64(ms.HeapSys)/(1<<20), float64(ms.StackSys)/(1<<20), ms.NumGC, gcPercent, memLimit>>20, *memoryMB)
	fmt.Printf("peer=pushfn n=%d conc=%d seconds=%.3f msgs_per_s=%.0f ok=%d failed=%d cpu_s=%.3f\n",
		*n, *conc, elapsed.Seconds(), float64(*n)/elapsed.Seconds(), ok, *n-ok, cpu.Seconds())
	return nil
}

// batch creates n accepted records and the SQS batch carrying them, each with a distinct id and
// a JSON payload of exactly size bytes.
func batch(ctx context.Context, s store.Store, target string, n, size int) (events.SQSEvent, []string, error) {
	payload := json.RawMessage(`{"d":"` + strings.Repeat("x", size-len(`{"d":""}`)) + `"}`)
	now := time.Now()
	ev := events.SQSEvent{Records: make([]events.SQSMessage, n)}
	ids := make([]string, n)
	for i := range n {
		id := message.NewID(now)
		ids[i] = id
		if err := s.Create(ctx, message.Record{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			return ev, nil, fmt.Errorf("create record: %w", err)
		}
		body, err := json.Marshal(message.Envelope{ID: id, Target: message.Target{URL: target}, Payload: payload})
		if err != nil {
			return ev, nil, fmt.Errorf("encode envelope: %w", err)
		}
		ev.Records[i] = events.SQSMessage{MessageId: fmt.Sprint("bench-", i), ReceiptHandle: fmt.Sprint("rh-", i), Body: string(body)}
	}
	return ev, ids, nil
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
