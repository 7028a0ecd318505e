package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchPool is the reference peer of the delivery benchmark, "a plain Go worker pool": conc goroutines
// POSTing the same n bodies with net/http and nothing else (no parsing, store, signature or
// logs), timed as bench deliver is, so a run shows what net/http alone costs on the machine.
func benchPool(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench pool", flag.ContinueOnError)
	target := fs.String("url", "http://127.0.0.1:9000/", "the receiver to push to")
	n := fs.Int("n", 10_000, "requests")
	size := fs.Int("size", 1024, "body bytes")
	conc := fs.Int("conc", 1_000, "goroutines and connections")
	caFile := fs.String("ca", "", "PEM file of the certificates to trust for an https --url (such as the one pushfn receiver --tls --cert-out writes); none: the system's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 8 || *n < 1 || *conc < 1 {
		return fmt.Errorf("--size must be at least 8, --n and --conc at least 1")
	}
	roots, err := benchRoots(*caFile, *target)
	if err != nil {
		return err
	}
	body := []byte(`{"d":"` + strings.Repeat("x", *size-8) + `"}`)
	// ForceAttemptHTTP2 keeps what a transport without a TLS config does: HTTP/2 where the target
	// offers it.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc,
		TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for range *conc {
		wg.Go(func() {
			for next.Add(1) <= int64(*n) {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, *target, bytes.NewReader(body))
				if err != nil {
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	client.CloseIdleConnections()
	fmt.Printf("peer=gopool n=%d conc=%d seconds=%.3f msgs_per_s=%.0f ok=%d failed=%d cpu_s=%.3f\n",
		*n, *conc, elapsed.Seconds(), float64(*n)/elapsed.Seconds(), ok.Load(), int64(*n)-ok.Load(), cpu.Seconds())
	return nil
}
