package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pushfn/pushfn/shared/local/receiver"
	"github.com/pushfn/pushfn/shared/push"
)

// receiverCmd serves a loopback push receiver until ctx ends:
// pushfn receiver --addr 127.0.0.1:9000 --status 200 --delay 0 --secret whsec_... --quiet
func receiverCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	status := fs.Int("status", 200, "status to answer with")
	delay := fs.Duration("delay", 0, "wait before answering (e.g. 50ms)")
	secrets := fs.String("secret", "", "signing secrets to verify with (whsec_..., space-separated)")
	quiet := fs.Bool("quiet", false, "do not print each push")
	failFirst := fs.Int("fail-first", 0, "answer the first N pushes of each message id with --fail-status")
	failStatus := fs.Int("fail-status", 503, "status for the pushes --fail-first covers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rc := &receiver.Receiver{Status: *status, Delay: *delay, FailFirst: *failFirst, FailStatus: *failStatus}
	for _, s := range strings.Fields(*secrets) {
		key, err := push.ParseSecret(s)
		if err != nil {
			return err
		}
		rc.Keys = append(rc.Keys, key)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	if !*quiet {
		rc.OnPush = func(p receiver.Push) {
			sig := "unchecked"
			if p.Signed {
				sig = "ok"
				if !p.SignatureOK {
					sig = "bad (" + p.Err.Error() + ")"
				}
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "push id=%s size=%d signature=%s\n", p.ID, p.Size, sig)
			_ = out.Flush()
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "pushfn receiver listening on http://%s (status %d, delay %s, signatures %s); counts at %s\n",
		ln.Addr(), *status, *delay, map[bool]string{true: "verified", false: "not checked"}[len(rc.Keys) > 0], receiver.StatsPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	c := rc.Counts()
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(out, "received=%d distinct_ids=%d bytes=%d signature_ok=%d signature_bad=%d\n", c.Received, c.Distinct, c.Bytes, c.SignatureOK, c.SignatureBad)
	return out.Flush()
}
