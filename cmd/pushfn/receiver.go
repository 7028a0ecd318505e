package main

import (
	"bufio"
	"context"
	"crypto/tls"
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
// pushfn receiver --addr 127.0.0.1:9000 --status 200 --delay 0 --secret whsec_... --quiet,
// over HTTPS with --tls --cert-out FILE [--http2].
func receiverCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	status := fs.Int("status", 200, "status to answer with")
	delay := fs.Duration("delay", 0, "wait before answering (e.g. 50ms)")
	secrets := fs.String("secret", "", "signing secrets to verify with (whsec_..., space-separated)")
	quiet := fs.Bool("quiet", false, "do not print each push")
	failFirst := fs.Int("fail-first", 0, "answer the first N pushes of each message id with --fail-status")
	failStatus := fs.Int("fail-status", 503, "status for the pushes --fail-first covers")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a certificate made at start for 127.0.0.1 and localhost (needs --cert-out)")
	certOut := fs.String("cert-out", "", "with --tls: write the certificate (PEM) to this file, for a client's --ca")
	http2 := fs.Bool("http2", false, "with --tls: offer HTTP/2 as well as HTTP/1.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *useTLS && *certOut == "":
		return fmt.Errorf("%w: --tls needs --cert-out FILE, where the certificate is written for a client to trust", errUsage)
	case !*useTLS && *certOut != "":
		return fmt.Errorf("%w: --cert-out is for --tls", errUsage)
	case !*useTLS && *http2:
		return fmt.Errorf("%w: --http2 needs --tls (HTTP/2 is offered over TLS only)", errUsage)
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
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	scheme, protos := "http", ""
	if *useTLS {
		cert, certPEM, err := loopbackCert(time.Now())
		if err != nil {
			return err
		}
		// Written before the port opens, so a script that waits for the port finds the file.
		if err := os.WriteFile(*certOut, certPEM, 0o644); err != nil {
			return fmt.Errorf("--cert-out: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		// The protocols set what the server offers in ALPN: without h2 a client that offers both
		// (pushfn's) takes HTTP/1.1.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(*http2)
		scheme, protos = "https", ", protocols http/1.1"
		if *http2 {
			protos += " and h2"
		}
		protos += ", certificate in " + *certOut
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(os.Stderr, "pushfn receiver listening on %s://%s (status %d, delay %s, signatures %s%s); counts at %s\n",
		scheme, ln.Addr(), *status, *delay, map[bool]string{true: "verified", false: "not checked"}[len(rc.Keys) > 0], protos, receiver.StatsPath)
	errc := make(chan error, 1)
	go func() {
		if *useTLS {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
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
