// Package push sends one message to its target as DESIGN §6 describes, through one shared HTTP
// client that refuses blocked addresses at dial time (§7), and classifies the answer (§4); it
// also verifies the signatures a receiver gets.
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
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

// Outcome is how a delivery attempt ended.
type Outcome int

// The outcomes of DESIGN §4.
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

// ErrBlocked is reported (wrapped) when the target's address is in a blocked range of DESIGN §7.
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
	// Timeout bounds the attempt, within ctx; 0 means ctx alone. It is cheaper than a context
	// with a deadline: a pooled connection needs no timer of its own.
	Timeout time.Duration
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
	// MaxPerHost bounds the connections to one host (and the idle ones kept); 0 means 128.
	MaxPerHost int
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
}

// Client pushes messages. Build one per process and share it: it keeps connections alive across
// invocations. It is safe for concurrent use.
type Client struct {
	// h1 carries pushes over HTTP/1.1 (plain http, and TLS targets that do not offer HTTP/2).
	h1 *h1Pool
	// transport carries the pushes to TLS targets that negotiate HTTP/2. It is called directly,
	// not through an http.Client: redirects are never followed.
	transport *http.Transport
	signer    *signer
	userAgent string
}

// maxDrain is how much of a response body is read so that the connection can be reused;
// anything longer closes the connection instead.
const maxDrain = 64 << 10

// NewClient returns a Client with a transport sized for o.MaxPerHost.
func NewClient(o Options) *Client {
	if o.MaxPerHost <= 0 {
		o.MaxPerHost = 128
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
	pool := &h1Pool{
		dialer:     dialer,
		tlsConfig:  &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		maxPerHost: o.MaxPerHost,
	}
	transport := &http.Transport{
		Proxy:       nil, // a proxy would dial for us and bypass the address check
		DialContext: dialer.DialContext,
		// The HTTP/1.1 path learns that a target speaks HTTP/2 from its first TLS connection,
		// which it leaves here for the transport to use.
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			if conn := pool.takeSpare(addr); conn != nil {
				return conn, nil
			}
			_, tc, err := pool.dialTLS(ctx, addr, []string{"h2", "http/1.1"})
			if err != nil {
				return nil, err
			}
			return tc, nil
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   o.MaxPerHost,
		MaxConnsPerHost:       o.MaxPerHost,
		IdleConnTimeout:       h1IdleTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 0,
		DisableCompression:    true,
		TLSClientConfig:       pool.tlsConfig,
	}
	return &Client{
		h1:        pool,
		transport: transport,
		signer:    newSigner(o.Keys),
		userAgent: "pushfn/" + o.Version,
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

// Send makes one attempt to deliver r, within ctx, and classifies its end. It never follows a
// redirect.
func (c *Client) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	var deadline time.Time
	if r.Timeout > 0 {
		deadline = start.Add(r.Timeout)
	}
	res := c.send(ctx, r, deadline)
	res.Duration = time.Since(start)
	return res
}

func (c *Client) send(ctx context.Context, r Request, deadline time.Time) Result {
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
	ts := r.Now.Unix()
	sig := c.signer.sign(r.ID, ts, r.Body)
	if res, ok := c.sendH1(ctx, deadline, u, r, ts, sig); ok {
		return res
	}
	ctx, cancel := bound(ctx, deadline)
	defer cancel()
	return c.sendHTTP(ctx, u, r, ts, sig)
}

// sendH1 pushes r over HTTP/1.1; ok is false when the target speaks HTTP/2 instead.
func (c *Client) sendH1(ctx context.Context, deadline time.Time, u *url.URL, r Request, ts int64, sig string) (res Result, ok bool) {
	// A second pass only follows a kept-alive connection that failed before anything of the
	// request was written, so the target cannot have received it.
	for range 2 {
		h, conn, err := c.h1.get(ctx, deadline, u)
		if errors.Is(err, errHTTP2) {
			return Result{}, false
		}
		if err != nil {
			return transportFailure(err), true
		}
		reused := conn.reused
		conn.wbuf = c.appendHead(conn.wbuf[:0], u, r, ts, sig)
		resp, reusable, written, err := conn.roundTrip(ctx, deadline, r.Body)
		c.h1.put(h, conn, err == nil && reusable)
		if err != nil {
			if reused && !written && ctx.Err() == nil {
				continue
			}
			return transportFailure(err), true
		}
		return classify(resp.status, resp.retryAfter, r.Now), true
	}
	return transportFailure(errors.New("kept-alive connections closed before the request was written")), true
}

// appendHead appends the request line and headers of r to b.
func (c *Client) appendHead(b []byte, u *url.URL, r Request, ts int64, sig string) []byte {
	b = append(b, "POST "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUser-Agent: "...)
	b = append(b, c.userAgent...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(r.Body)), 10)
	b = append(b, "\r\n"+HeaderID+": "...)
	b = append(b, r.ID...)
	b = append(b, "\r\n"+HeaderTimestamp+": "...)
	b = strconv.AppendInt(b, ts, 10)
	if sig != "" {
		b = append(b, "\r\n"+HeaderSignature+": "...)
		b = append(b, sig...)
	}
	for k, v := range r.Headers {
		k = textproto.CanonicalMIMEHeaderKey(k)
		if reservedHeaders[k] {
			continue
		}
		b = append(b, "\r\n"...)
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
	}
	return append(b, "\r\n\r\n"...)
}

// reservedHeaders are set by the push itself; a message's own headers cannot replace them.
var reservedHeaders = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Type": true, "Content-Length": true, "Transfer-Encoding": true,
	"Connection": true, "Trailer": true, "Te": true, "Upgrade": true, "Keep-Alive": true,
	HeaderID: true, HeaderTimestamp: true, HeaderSignature: true,
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

// sendHTTP pushes r through net/http's transport: TLS targets that negotiate HTTP/2.
func (c *Client) sendHTTP(ctx context.Context, u *url.URL, r Request, ts int64, sig string) Result {
	h := make(http.Header, len(r.Headers)+5)
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	// One backing array for the values of the headers every push carries.
	vals := [...]string{"application/json", c.userAgent, r.ID, strconv.FormatInt(ts, 10), sig}
	v := vals[:]
	h["Content-Type"] = v[0:1:1]
	h["User-Agent"] = v[1:2:2]
	h[HeaderID] = v[2:3:3]
	h[HeaderTimestamp] = v[3:4:4]
	if v[4] != "" {
		h[HeaderSignature] = v[4:5:5]
	}
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(r.Body)),
		ContentLength: int64(len(r.Body)),
		Host:          u.Host,
	}
	body := r.Body
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req = req.WithContext(ctx)

	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		// The URL may carry a secret in its query: keep it out of the error, which is logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return transportFailure(err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
	return classify(resp.StatusCode, resp.Header.Get("Retry-After"), r.Now)
}

// bound returns ctx ending at deadline too, unless deadline is zero or ctx ends first.
func bound(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); deadline.IsZero() || (ok && !d.After(deadline)) {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// transportFailure classifies an attempt that got no answer.
func transportFailure(err error) Result {
	err = fmt.Errorf("post: %w", err)
	if errors.Is(err, ErrBlocked) {
		return Result{Outcome: Permanent, Err: err}
	}
	return Result{Outcome: Retryable, Err: err}
}

// classify applies DESIGN §4 to a response.
func classify(code int, retryAfter string, now time.Time) Result {
	res := Result{StatusCode: code}
	switch {
	case code >= 200 && code <= 299:
		res.Outcome = Delivered
		return res
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
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
