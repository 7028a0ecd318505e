// Package push sends one message to its target (a POST of the payload with the Standard Webhooks
// headers) through one shared HTTP client that refuses loopback, private, link-local and other
// blocked addresses at dial time, and classifies the answer as delivered, retryable or
// permanent; it also verifies the signatures a receiver gets.
//
// Ships in the deliver function.
package push

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/pushfn/pushfn/shared/message"
)

// Outcome is how a delivery attempt ended.
type Outcome int

// The outcomes of an attempt; only Retryable ones are tried again.
const (
	// Delivered: the target answered 2xx.
	Delivered Outcome = iota + 1
	// Retryable: 408, 425, 429, 5xx, a timeout or a connection error; worth another attempt.
	Retryable
	// Permanent: any other answer (3xx and 4xx included) or a target that may never be reached.
	Permanent
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// ErrBlocked is reported (wrapped) when the target's address is in a blocked range (loopback,
// private, link-local, CGNAT, multicast, unspecified or reserved; see message.BlockedAddr).
var ErrBlocked = errors.New("target address is blocked")

// ErrStatus is wrapped by a Result's Err when the target answered with a non-2xx status.
var ErrStatus = errors.New("target answered with an unsuccessful status")

// Request is one delivery attempt.
type Request struct {
	ID      string            // the message id, sent as webhook-id
	URL     string            // absolute http(s) URL
	Parsed  *url.URL          // URL already parsed, if the caller has it; never modified
	Headers map[string]string // the message's custom headers
	Body    []byte            // the payload bytes, sent as they are
	Now     time.Time         // the attempt's time, sent as webhook-timestamp
	// Timeout bounds the attempt, every phase of it (dial, TLS, request, answer, drain), within
	// ctx; 0 means ctx alone.
	Timeout time.Duration
	// Keys, when not nil, sign this push in place of the client's Options.Keys (a message to an
	// endpoint is signed with the endpoint's own secrets); an empty, non-nil list signs nothing.
	Keys [][]byte
}

// Result is the classified end of one attempt.
type Result struct {
	Outcome    Outcome
	StatusCode int           // 0 when no response arrived
	RetryAfter time.Duration // the target's Retry-After, when it sent one with a retryable status
	Err        error         // nil when delivered; wraps ErrStatus, ErrBlocked or the transport error
	Duration   time.Duration
}

// Options configure a Client.
type Options struct {
	// MaxPerHost bounds the connections to one host, and the idle ones kept for it; 0 means 128.
	// It bounds each of the client's two pools (HTTP/1.1 pushes of small bodies; HTTP/2 and
	// large bodies): a host that gets both keeps up to twice as many.
	MaxPerHost int
	// MaxIdleConns bounds the idle connections kept across all hosts, in each of the two pools;
	// 0 means 512. A process that meets many hosts keeps at most this many connections open
	// between pushes in each; past it the connection idle the longest is closed.
	MaxIdleConns int
	// IdleTimeout is how long an idle connection is kept; 0 means 90 s, and it is never longer.
	IdleTimeout time.Duration
	// AllowPrivate lets pushes reach blocked addresses: local runs and tests only.
	AllowPrivate bool
	// Keys sign every request (webhook-signature); none means no signature header.
	Keys [][]byte
	// Version goes into the User-Agent header, pushfn/<version>; empty means "dev".
	Version string
	// DialTimeout bounds connecting; 0 means 5 s. The request's context bounds the rest.
	DialTimeout time.Duration
	// RootCAs verify targets' certificates; nil means the system's roots.
	RootCAs *x509.CertPool
	// Resolver looks target names up; nil means the system's. The address check applies to
	// whatever it answers.
	Resolver *net.Resolver
	// Propagator, when not nil (tracing is on), writes the context of the span in each push's
	// context into its request (the W3C traceparent and tracestate headers); those headers of
	// the message itself are then never sent, so that a target sees one trace. Nil sends the
	// message's own, as any other header of it.
	Propagator propagation.TextMapPropagator
}

// Client pushes messages. Build one per process and share it: it keeps connections alive across
// invocations. It is safe for concurrent use.
type Client struct {
	// h1 carries pushes to HTTP/1.1 targets, plain or over TLS, of bodies up to maxH1Body.
	h1 *h1
	// transport carries the rest: targets that negotiate HTTP/2, and larger bodies. It is called
	// directly, not through an http.Client: redirects are never followed.
	transport  *http.Transport
	signer     *signer
	userAgent  string
	propagator propagation.TextMapPropagator
}

// Limits of what a push reads of an answer.
const (
	// maxDrain is how much of a response body is read so that the connection can be reused;
	// anything longer closes the connection instead. Trailers are bounded by the transport's
	// read buffer (bufSize).
	maxDrain = 64 << 10
	// maxHead bounds an answer's status line and headers.
	maxHead = 256 << 10
	// bufSize is the read and the write buffer of each connection (the transport's default is
	// 4 KiB each). It holds a push's head and a 1 KiB payload in one write, and bounds trailers.
	// Measured on the deliver bench (10,000 pushes, 1,000 connections, 2026-12-02): peak RSS
	// from 126-130 MiB with 4 KiB buffers to 117-121 MiB, under the 128 MiB target.
	bufSize = 2 << 10
	// tlsHandshakeTimeout bounds a TLS handshake when the push has no deadline of its own.
	tlsHandshakeTimeout = 10 * time.Second
	// maxIdleTimeout is the longest an idle connection is kept.
	maxIdleTimeout = 90 * time.Second
	// tries bounds the round trips of one push whose request was refused before any of it was
	// written (see guardConn).
	tries = 3
)

// NewClient returns a Client with a transport sized for o.MaxPerHost and o.MaxIdleConns.
func NewClient(o Options) *Client {
	if o.MaxPerHost <= 0 {
		o.MaxPerHost = 128
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 512
	}
	if o.IdleTimeout <= 0 || o.IdleTimeout > maxIdleTimeout {
		o.IdleTimeout = maxIdleTimeout
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	if !o.AllowPrivate {
		dialer.Control = refuseBlocked
	}
	tlsConfig := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	transport := &http.Transport{
		Proxy: nil, // a proxy would dial for us and bypass the address check
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newGuardConn(c), nil
		},
		TLSClientConfig:        tlsConfig,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           o.MaxIdleConns,
		MaxIdleConnsPerHost:    o.MaxPerHost,
		MaxConnsPerHost:        o.MaxPerHost,
		IdleConnTimeout:        o.IdleTimeout,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ExpectContinueTimeout:  0,
		MaxResponseHeaderBytes: maxHead,
		DisableCompression:     true,
		ReadBufferSize:         bufSize,
		WriteBufferSize:        bufSize,
	}
	return &Client{
		h1:         newH1(dialer.DialContext, tlsConfig, o.MaxPerHost, o.MaxIdleConns, o.IdleTimeout),
		transport:  transport,
		signer:     newSigner(o.Keys),
		userAgent:  "pushfn/" + o.Version,
		propagator: o.Propagator,
	}
}

// CloseIdleConnections closes the connections kept alive for reuse.
func (c *Client) CloseIdleConnections() {
	c.h1.closeIdle()
	c.transport.CloseIdleConnections()
}

// refuseBlocked is the dialer's Control: it runs after DNS resolution for every address dialled,
// so a name that resolves (or rebinds) to a blocked address is refused as an IP literal is.
func refuseBlocked(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", network, address, ErrBlocked)
	}
	if message.BlockedAddr(ap.Addr()) {
		return fmt.Errorf("dial %s: %w", ap.Addr(), ErrBlocked)
	}
	return nil
}

// Send makes one attempt to deliver r, within ctx and r.Timeout, and classifies its end. It
// never follows a redirect.
func (c *Client) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	res := c.send(ctx, r)
	res.Duration = time.Since(start)
	return res
}

func (c *Client) send(ctx context.Context, r Request) Result {
	u, err := r.Parsed, error(nil)
	if u == nil {
		u, err = url.Parse(r.URL)
	}
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Result{Outcome: Permanent, Err: fmt.Errorf("target url: not an absolute http(s) URL")}
	}
	for k, v := range r.Headers {
		if !validHeader(k, v) {
			return Result{Outcome: Permanent, Err: fmt.Errorf("header %q: invalid name or value", k)}
		}
	}
	// The push's deadline: its timeout, within ctx's. The HTTP/1.1 path sets it on the
	// connection and follows ctx for a cancellation only, rather than deriving a context per
	// push: on the deliver bench (0 ms, 100 connections) the derived context's timer and its
	// registration with the shared parent cost 2.6 us of the 22 us CPU per push.
	deadline, _ := ctx.Deadline()
	if r.Timeout > 0 {
		if d := time.Now().Add(r.Timeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	if len(r.Body) <= maxH1Body {
		if h := c.h1.host(u); h != nil {
			if res, ok := c.sendH1(ctx, h, u, r, deadline); ok {
				return res
			}
		}
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	h := make(http.Header, len(r.Headers)+5)
	c.headers(ctx, r, func(k, v string) { h[k] = append(h[k], v) })
	for range tries {
		a := newAttempt()
		req := (&http.Request{
			Method:        http.MethodPost,
			URL:           u,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        h,
			Body:          io.NopCloser(bytes.NewReader(r.Body)),
			ContentLength: int64(len(r.Body)),
			Host:          u.Host,
			GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r.Body)), nil },
		}).WithContext(httptrace.WithClientTrace(ctx, &a.trace))
		resp, err := c.transport.RoundTrip(req)
		if a.early.Load() {
			if resp != nil {
				_ = resp.Body.Close()
			}
			if a.unsent() && ctx.Err() == nil {
				continue
			}
			return transportFailure(errEarlyAnswer)
		}
		if err != nil {
			// The URL may carry a secret in its query: keep it out of the error, which is logged.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
			return transportFailure(err)
		}
		// A 1xx the transport ends on (101) has no body to wait for: its connection is dropped.
		if resp.StatusCode >= 200 {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		}
		_ = resp.Body.Close()
		return classify(resp.StatusCode, resp.Header.Get("Retry-After"), r.Now)
	}
	return transportFailure(errEarlyAnswer)
}

// headers calls set for each header of r's request: the message's own, then those of the push,
// which no header of the message replaces, and the trace context of ctx's span when tracing is
// on.
func (c *Client) headers(ctx context.Context, r Request, set func(k, v string)) {
	var tc *traceHeaders // allocated only with tracing on
	if c.propagator != nil {
		tc = &traceHeaders{}
		c.propagator.Inject(ctx, tc)
	}
	for k, v := range r.Headers {
		if k = textproto.CanonicalMIMEHeaderKey(k); !reservedHeaders[k] && (tc == nil || !traceHeader[k]) {
			set(k, v)
		}
	}
	if tc != nil {
		for _, h := range tc.kv[:tc.n] {
			set(h[0], h[1])
		}
	}
	set("Content-Type", "application/json")
	set("User-Agent", c.userAgent)
	set(HeaderID, r.ID)
	set(HeaderTimestamp, strconv.FormatInt(r.Now.Unix(), 10))
	var sig string
	if r.Keys != nil {
		sig = Sign(r.Keys, r.ID, r.Now.Unix(), r.Body)
	} else {
		sig = c.signer.sign(r.ID, r.Now.Unix(), r.Body)
	}
	if sig != "" {
		set(HeaderSignature, sig)
	}
}

// reservedHeaders are set by the push itself or frame the request; a message's own headers
// cannot replace them.
var reservedHeaders = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Type": true, "Content-Length": true, "Transfer-Encoding": true,
	"Connection": true, "Proxy-Connection": true, "Trailer": true, "Te": true, "Upgrade": true, "Keep-Alive": true,
	"Expect": true, HeaderID: true, HeaderTimestamp: true, HeaderSignature: true,
}

// traceHeader names the headers of the W3C trace context, which a message's own headers do not
// set while tracing is on. Keys are canonical.
var traceHeader = map[string]bool{"Traceparent": true, "Tracestate": true}

// traceHeaders is the carrier a propagator writes a push's trace context into: the few headers
// of the W3C trace context, in order.
type traceHeaders struct {
	kv [2][2]string
	n  int
}

var _ propagation.TextMapCarrier = (*traceHeaders)(nil)

// Get returns the value set for key, or "".
func (t *traceHeaders) Get(key string) string {
	for _, h := range t.kv[:t.n] {
		if strings.EqualFold(h[0], key) {
			return h[1]
		}
	}
	return ""
}

// Set keeps key's value, replacing an earlier one; past the headers of the trace context it keeps
// nothing.
func (t *traceHeaders) Set(key, value string) {
	for i := range t.kv[:t.n] {
		if strings.EqualFold(t.kv[i][0], key) {
			t.kv[i][1] = value
			return
		}
	}
	if !traceHeader[textproto.CanonicalMIMEHeaderKey(key)] || t.n == len(t.kv) {
		return
	}
	t.kv[t.n] = [2]string{key, value}
	t.n++
}

// Keys lists the keys set.
func (t *traceHeaders) Keys() []string {
	keys := make([]string, t.n)
	for i := range keys {
		keys[i] = t.kv[i][0]
	}
	return keys
}

// validHeader reports whether k is an HTTP token and v holds no control character but tab.
func validHeader(k, v string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		ch := k[i]
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, ch) >= 0 {
			return false
		}
	}
	for i := range len(v) {
		if ch := v[i]; (ch < ' ' && ch != '\t') || ch == 0x7f {
			return false
		}
	}
	return true
}

// transportFailure classifies an attempt that got no answer.
func transportFailure(err error) Result {
	err = fmt.Errorf("post: %w", err)
	if errors.Is(err, ErrBlocked) {
		return Result{Outcome: Permanent, Err: err}
	}
	return Result{Outcome: Retryable, Err: err}
}

// classify reads a final status: 2xx is delivered; 408, 425, 429 and 5xx are retryable, with
// the target's Retry-After; anything else, 1xx, 3xx, 4xx and statuses past 599 included, is
// permanent.
func classify(code int, retryAfter string, now time.Time) Result {
	res := Result{StatusCode: code}
	switch {
	case code >= 200 && code <= 299:
		res.Outcome = Delivered
		return res
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500 && code <= 599:
		res.Outcome = Retryable
		res.RetryAfter = RetryAfter(retryAfter, now)
	default:
		res.Outcome = Permanent
	}
	res.Err = fmt.Errorf("status %d: %w", code, ErrStatus)
	return res
}

// RetryAfter reads a Retry-After value, delay-seconds or an HTTP date, as a delay from now.
// Anything unreadable, or in the past, is 0.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(365 * 24 * 3600)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// FDMargin is the room for descriptors beyond the pushes' connections that a process passes to
// ReserveFDs: logs, the SDK clients' connections, the runtime's own.
const FDMargin = 64
