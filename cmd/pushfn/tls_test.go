package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/receiver"
)

// TestLoopbackCert checks the receiver's certificate: ECDSA P-256, self-signed, trusted from its
// own PEM for 127.0.0.1 and localhost as a server, and for no other name.
func TestLoopbackCert(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cert, certPEM, err := loopbackCert(now)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := cert.Leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("public key %T, want ECDSA P-256", cert.Leaf.PublicKey)
	}
	roots, n, err := parseRoots(certPEM)
	if err != nil || n != 1 {
		t.Fatalf("parseRoots(the certificate's PEM) = %d certificates, %v; want 1", n, err)
	}
	tests := []struct {
		name   string
		at     time.Time
		wantOK bool
	}{
		{"127.0.0.1", now, true},
		{"localhost", now, true},
		{"127.0.0.2", now, false},
		{"example.com", now, false},
		{"localhost", now.Add(29 * 24 * time.Hour), true},
		{"localhost", now.Add(31 * 24 * time.Hour), false},
	}
	for _, tt := range tests {
		_, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: tt.name, Roots: roots, CurrentTime: tt.at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != tt.wantOK {
			t.Errorf("verify for %s at %s: %v, want ok %v", tt.name, tt.at.Format(time.DateOnly), err, tt.wantOK)
		}
	}
}

// certPEM is a certificate in PEM, for tests of --ca files.
func certPEM(t testing.TB) []byte {
	t.Helper()
	_, b, err := loopbackCert(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRoots(t *testing.T) {
	t.Parallel()
	cert := certPEM(t)
	key := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("not looked at")})
	badDER := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name  string
		data  []byte
		wantN int // 0: want errCAFile
	}{
		{"one certificate", cert, 1},
		{"two certificates and a key, with blank lines", join(cert, []byte("\n\n"), key, cert, []byte("\n")), 2},
		{"empty", nil, 0},
		{"blank", []byte(" \n\t\n"), 0},
		{"not PEM", []byte("hello"), 0},
		{"a key only", key, 0},
		{"a certificate that does not parse", badDER, 0},
		{"a good certificate, then a bad one", join(cert, badDER), 0},
		{"a certificate, then bytes that are not PEM", join(cert, []byte("trailing")), 0},
		{"a certificate cut short", cert[:len(cert)/2], 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, n, err := parseRoots(tt.data)
			if tt.wantN == 0 {
				if !errors.Is(err, errCAFile) || pool != nil {
					t.Fatalf("parseRoots = %v, %v; want errCAFile and no pool", pool, err)
				}
				return
			}
			if err != nil || n != tt.wantN || pool == nil {
				t.Fatalf("parseRoots = %d certificates, %v; want %d", n, err, tt.wantN)
			}
		})
	}
}

// FuzzParseRoots: whatever the file holds, parseRoots returns a pool of at least one certificate
// or an errCAFile, never a panic.
func FuzzParseRoots(f *testing.F) {
	cert := certPEM(f)
	f.Add(cert)
	f.Add(append(append([]byte{}, cert...), cert...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("hello"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pool, n, err := parseRoots(data)
		switch {
		case err != nil && (!errors.Is(err, errCAFile) || pool != nil):
			t.Fatalf("parseRoots = %v, %v; an error must be errCAFile, with no pool", pool, err)
		case err == nil && (pool == nil || n < 1):
			t.Fatalf("parseRoots = %v, %d certificates, no error; want at least one", pool, n)
		}
	})
}

func TestLoadRoots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pem")
	if err := os.WriteFile(good, certPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if pool, err := loadRoots(""); pool != nil || err != nil {
		t.Errorf(`loadRoots("") = %v, %v; want none, no error`, pool, err)
	}
	if pool, err := loadRoots(good); pool == nil || err != nil {
		t.Errorf("loadRoots(a certificate) = %v, %v; want a pool", pool, err)
	}
	if _, err := loadRoots(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loadRoots(a missing file) = %v, want fs.ErrNotExist", err)
	}
}

// TestBenchRefusesBadCA: both benches refuse a --ca file that is missing or not certificates,
// and a --ca for a target that is not https, before they push anything.
func TestBenchRefusesBadCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	good := filepath.Join(dir, "good.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, certPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, bench := range []string{"deliver", "pool"} {
		tests := []struct {
			name string
			url  string
			ca   string
			want error
		}{
			{"missing file", "https://127.0.0.1:1/", missing, fs.ErrNotExist},
			{"not certificates", "https://127.0.0.1:1/", junk, errCAFile},
			{"plain http target", "http://127.0.0.1:1/", good, errUsage},
		}
		for _, tt := range tests {
			t.Run(bench+" "+tt.name, func(t *testing.T) {
				t.Parallel()
				err := benchCmd(context.Background(), []string{bench, "--url", tt.url, "--ca", tt.ca, "--n", "1"})
				if !errors.Is(err, tt.want) {
					t.Fatalf("bench %s --url %s --ca %s: %v, want %v", bench, tt.url, tt.ca, err, tt.want)
				}
			})
		}
	}
}

func TestReceiverRefusesBadTLSFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"tls without cert-out", []string{"--tls"}, errUsage},
		{"cert-out without tls", []string{"--cert-out", "cert.pem"}, errUsage},
		{"http2 without tls", []string{"--http2"}, errUsage},
		{"cert-out in a missing directory", []string{"--tls", "--cert-out", filepath.Join(t.TempDir(), "missing", "cert.pem")}, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// An ended context: a receiver that took the flags would stop at once, not serve on.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"--addr", "127.0.0.1:0", "--quiet"}, tt.args...)
			if err := receiverCmd(ctx, args); !errors.Is(err, tt.want) {
				t.Fatalf("receiver %q: %v, want %v", args, err, tt.want)
			}
		})
	}
}

// tlsReceiver is a pushfn receiver --tls started by a test.
type tlsReceiver struct {
	addr     string
	certFile string         // its --cert-out
	roots    *x509.CertPool // from certFile
	client   *http.Client   // trusts roots
}

// startTLSReceiver runs the receiver command with --tls, --cert-out and extra, and returns once
// it answers over TLS with the certificate it wrote. The test's end stops it and checks it ended
// without error.
func startTLSReceiver(t *testing.T, extra ...string) *tlsReceiver {
	t.Helper()
	addr := freeAddr(t)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"--addr", addr, "--quiet", "--tls", "--cert-out", certFile}, extra...)
	go func() { done <- receiverCmd(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("receiver %q: %v", args, err)
			}
		case <-time.After(60 * time.Second): // its shutdown gives connections 5 s
			t.Errorf("receiver %q did not stop", args)
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		// The file is written before the port opens; a read may still see it half written.
		roots, err := loadRoots(certFile)
		if err == nil {
			r := &tlsReceiver{addr: addr, certFile: certFile, roots: roots, client: &http.Client{Timeout: 5 * time.Second,
				Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}}
			if _, err = r.counts(); err == nil {
				return r
			}
		}
		select {
		case err := <-done:
			t.Fatalf("receiver %q ended before it answered: %v", args, err)
		case <-time.After(10 * time.Millisecond): // poll until it serves
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver %q did not answer over TLS: %v", args, err)
		}
	}
}

// counts returns the receiver's counts, read over TLS.
func (r *tlsReceiver) counts() (receiver.Counts, error) {
	var c receiver.Counts
	resp, err := r.client.Get("https://" + r.addr + receiver.StatsPath)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, errors.New(resp.Status)
	}
	return c, json.NewDecoder(resp.Body).Decode(&c)
}

// TestReceiverTLS: the receiver serves TLS with the certificate it wrote, valid for both names,
// and offers h2 in ALPN only with --http2, so a client offering both takes HTTP/1.1 without it.
func TestReceiverTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"http/1.1 only", nil, "http/1.1"},
		{"with --http2", []string{"--http2"}, "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := startTLSReceiver(t, tt.extra...)
			_, port, err := net.SplitHostPort(r.addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, host := range []string{"127.0.0.1", "localhost"} {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort("127.0.0.1", port),
					&tls.Config{RootCAs: r.roots, ServerName: host, NextProtos: []string{"h2", "http/1.1"}})
				if err != nil {
					t.Fatalf("TLS to the receiver as %s: %v", host, err)
				}
				if got := conn.ConnectionState().NegotiatedProtocol; got != tt.want {
					t.Errorf("as %s: negotiated %q, want %q", host, got, tt.want)
				}
				_ = conn.Close()
			}
		})
	}
}

// TestBenchTLS: bench deliver with --ca pushes a whole batch to receiver --tls, over HTTP/1.1 and
// over h2, as does bench pool; without --ca nothing reaches the receiver, since its certificate
// is trusted only through the file.
func TestBenchTLS(t *testing.T) {
	t.Parallel()
	const n = 40
	tests := []struct {
		name         string
		bench        string
		http2        bool
		withCA       bool
		wantReceived int64
		wantDistinct int64 // webhook-ids: the pool sends none
		wantSigned   int64 // the pool signs nothing
	}{
		{"deliver http/1.1", "deliver", false, true, n, n, n},
		{"deliver h2", "deliver", true, true, n, n, n},
		{"pool http/1.1", "pool", false, true, n, 1, 0},
		{"pool h2", "pool", true, true, n, 1, 0},
		{"deliver without --ca", "deliver", false, false, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			extra := []string{"--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
			if tt.http2 {
				extra = append(extra, "--http2")
			}
			r := startTLSReceiver(t, extra...)
			args := []string{tt.bench, "--url", "https://" + r.addr + "/", "--n", strconv.Itoa(n), "--size", "64", "--conc", "4"}
			if tt.withCA {
				args = append(args, "--ca", r.certFile)
			}
			if err := benchCmd(context.Background(), args); err != nil {
				t.Fatal(err)
			}
			c, err := r.counts()
			if err != nil {
				t.Fatal(err)
			}
			if c.Received != tt.wantReceived || c.Distinct != tt.wantDistinct || c.SignatureOK != tt.wantSigned || c.Bytes != tt.wantReceived*64 {
				t.Fatalf("receiver counts %+v, want %d pushes of 64 bytes, %d distinct ids, %d signed", c, tt.wantReceived, tt.wantDistinct, tt.wantSigned)
			}
		})
	}
}
