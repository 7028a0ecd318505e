package push

import (
	"bufio"
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Pushes to HTTP/1.1 targets go through github.com/valyala/fasthttp's request writer and
// response parser over connections from its per-host pool; the round trip around them (which
// connection may carry the request, how much of the answer is read, when a connection is
// closed) is pushfn's own, so that every answer is the push's own and bounded. Targets that
// negotiate HTTP/2, and bodies too large to be written before the answer is read, go through
// net/http instead (see Client).
//
// Why two clients: on the delivery benchmark (10,000 pushes of 1 KiB to a loopback receiver,
// `make bench`, 2026-12-02) net/http's transport alone reached 0.86 x wrk at 50 ms and 1,000
// connections and 0.40 x at 0 ms and 100 connections, 123 MiB peak RSS, 55.6 and 39.7 us of CPU
// per push; the first build of this path reached 0.91 x and 0.48 x, 100.6 MiB, 37.8 and 20.2 us
// (the README has the current figures). The difference is net/http's two goroutines per
// connection, and its request writing and response parsing.

// maxH1Body is the largest body sent through the HTTP/1.1 path. The request is written whole
// before its answer is read; a body this small fits in the socket buffers of both ends, so a
// target that answers (413, or any status) without reading it cannot block the write and the
// answer is read. Larger bodies go through net/http, which reads while it writes.
const maxH1Body = 16 << 10

// h1ReadBuffer is the read buffer an answer is parsed from: it holds a usual head whole. A head
// larger than this is read again through a buffer of maxHead, and its connection is not kept.
const h1ReadBuffer = 4 << 10

// h1WriteBuffer is the write buffer a request is written through, taken from a pool for the
// write only: a push's head and a 1 KiB payload go out in one write.
const h1WriteBuffer = 4 << 10

// errHTTP2 is reported by the HTTP/1.1 path's dial when the target chose HTTP/2: the push goes
// through net/http, nothing of it having been written.
var errHTTP2 = errors.New("the target negotiated HTTP/2")

// longAgo is a deadline in the past: it makes a connection's pending and future I/O fail at
// once.
var longAgo = time.Unix(1, 0)

// h1 is the HTTP/1.1 client: one fasthttp.HostClient per scheme and host, and the idle
// connections of all of them, oldest first, capped.
type h1 struct {
	dial      func(ctx context.Context, network, addr string) (net.Conn, error) // TCP, address-checked
	tlsConfig *tls.Config
	perHost   int
	idleFor   time.Duration

	mu    sync.Mutex
	hosts map[string]*h1Host

	idleMu  sync.Mutex
	idle    list.List // of *h1Conn, most recently released at the front
	maxIdle int
}

// h1Host is one scheme and host: its pool, and whether it speaks HTTP/2.
type h1Host struct {
	hc   *fasthttp.HostClient
	h2   atomic.Bool  // the host negotiated HTTP/2: its pushes go through net/http
	used atomic.Int64 // when a push last asked for the host, in Unix nanoseconds
}

func newH1(dial func(ctx context.Context, network, addr string) (net.Conn, error), tlsConfig *tls.Config, perHost, maxIdle int, idleFor time.Duration) *h1 {
	return &h1{dial: dial, tlsConfig: tlsConfig, perHost: perHost, maxIdle: maxIdle, idleFor: idleFor, hosts: map[string]*h1Host{}}
}

// host returns the pool of u's scheme and host, or nil when that host speaks HTTP/2.
func (c *h1) host(u *url.URL) *h1Host {
	https := u.Scheme == "https"
	key := u.Scheme + "://" + u.Host
	now := time.Now().UnixNano()
	c.mu.Lock()
	h := c.hosts[key]
	if h == nil {
		h = c.newHost(u.Host, https)
		h.used.Store(now)
		c.hosts[key] = h
		c.sweepLocked()
	}
	c.mu.Unlock()
	if h.h2.Load() {
		return nil
	}
	h.used.Store(now)
	return h
}

// sweepLocked forgets hosts with no connection left that were not used for twice the idle
// timeout, once the map has grown: a process meeting many hosts keeps a bounded map.
func (c *h1) sweepLocked() {
	if len(c.hosts) < 256 || len(c.hosts)&63 != 0 {
		return
	}
	old := time.Now().Add(-2 * c.idleFor).UnixNano()
	for k, h := range c.hosts {
		if h.used.Load() < old && h.hc.ConnsCount() == 0 {
			delete(c.hosts, k)
		}
	}
}

func (c *h1) newHost(hostport string, https bool) *h1Host {
	h := &h1Host{}
	addr := fasthttp.AddMissingPort(hostport, https)
	var tlsConfig *tls.Config
	if https {
		tlsConfig = c.tlsConfig.Clone()
		tlsConfig.NextProtos = []string{"h2", "http/1.1"}
		if tlsConfig.ServerName == "" {
			name, _, err := net.SplitHostPort(addr)
			if err != nil {
				name = hostport
			}
			tlsConfig.ServerName = name
		}
	}
	h.hc = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: https,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return c.dialConn(h, addr, timeout, tlsConfig)
		},
		MaxConns:                 c.perHost,
		MaxConnWaitTimeout:       maxIdleTimeout, // a push waits for a connection within its own deadline
		MaxIdleConnDuration:      c.idleFor,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		SecureErrorLogMessage:    true,
		ReadBufferSize:           h1ReadBuffer,
		WriteBufferSize:          h1WriteBuffer,
	}
	return h
}

// dialConn connects to addr within timeout (TLS included for https; 0 means the dialer's own
// bound and tlsHandshakeTimeout), refusing HTTP/2.
func (c *h1) dialConn(h *h1Host, addr string, timeout time.Duration, tlsConfig *tls.Config) (net.Conn, error) {
	if timeout <= 0 {
		timeout = tlsHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	raw, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := &h1Conn{Conn: raw, quiet: quietCheck(raw), pool: c}
	if tlsConfig == nil {
		return conn, nil
	}
	tc := tls.Client(raw, tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		h.h2.Store(true)
		_ = tc.Close()
		return nil, errHTTP2
	}
	conn.Conn, conn.tls = tc, tc
	return conn, nil
}

// h1Conn is one HTTP/1.1 connection of the pool. It has a Handshake method so that fasthttp
// takes a TLS connection as already set up.
type h1Conn struct {
	net.Conn           // TCP, or TLS over TCP
	tls      *tls.Conn // nil for plain http
	quiet    func() bool
	pool     *h1
	used     bool // carried a request; only the round trip holding the connection touches it

	// Guarded by pool.idleMu.
	idleAt *list.Element // its place in pool.idle while idle
	gone   bool          // closed, or chosen to be closed as the oldest idle connection
}

// Handshake is a no-op: the connection was set up by the dial.
func (c *h1Conn) Handshake() error { return nil }

func (c *h1Conn) Close() error {
	c.pool.unidle(c, true)
	return c.Conn.Close()
}

// ready reports whether a connection that carried a request may carry another: open, with
// nothing sent unasked waiting to be read, in the TLS layer or on the socket.
func (c *h1Conn) ready() bool {
	if c.tls != nil {
		// A Read with a deadline in the past returns what the TLS layer holds, decrypted or in a
		// whole record, without waiting on the socket; it fails with a timeout when there is
		// nothing, which leaves the connection usable.
		var b [1]byte
		_ = c.tls.SetReadDeadline(longAgo)
		n, err := c.tls.Read(b[:])
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
	}
	return c.quiet()
}

// keep puts conn on the idle list as the most recently idle connection, and returns the oldest
// idle connection when the list is over its cap: the caller closes it once conn is back in its
// pool. The one returned is off the list and marked gone, so no round trip uses it.
func (c *h1) keep(conn *h1Conn) (oldest *h1Conn) {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	if conn.gone {
		return nil
	}
	conn.idleAt = c.idle.PushFront(conn)
	if c.idle.Len() <= c.maxIdle {
		return nil
	}
	oldest = c.idle.Remove(c.idle.Back()).(*h1Conn)
	oldest.idleAt = nil
	oldest.gone = true
	return oldest
}

// unidle takes conn off the idle list, for a round trip or because it is closing, and reports
// whether it may carry a request: false once it was closed or chosen to be.
func (c *h1) unidle(conn *h1Conn, closing bool) bool {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	if conn.idleAt != nil {
		c.idle.Remove(conn.idleAt)
		conn.idleAt = nil
	}
	usable := !conn.gone
	conn.gone = conn.gone || closing
	return usable
}

// closeIdle closes every idle connection.
func (c *h1) closeIdle() {
	c.mu.Lock()
	hosts := make([]*h1Host, 0, len(c.hosts))
	for _, h := range c.hosts {
		hosts = append(hosts, h)
	}
	c.mu.Unlock()
	for _, h := range hosts {
		h.hc.CloseIdleConnections()
	}
}

// reply is what a round trip read: the final status and Retry-After, or why there is none.
type reply struct {
	status     int
	retryAfter string
	err        error
}

// roundTrip sends req on a connection of h and reads its answer, within deadline (zero: none)
// and ctx. A connection that carried a request is checked before it carries another; one found
// unfit is closed and the request goes to another, none of it having been written.
func (c *h1) roundTrip(ctx context.Context, h *h1Host, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) reply {
	for {
		var wait time.Duration // 0: the pool's own bound
		if !deadline.IsZero() {
			if wait = time.Until(deadline); wait <= 0 {
				return reply{err: fmt.Errorf("%w (waiting for a connection)", context.DeadlineExceeded)}
			}
		}
		if err := ctx.Err(); err != nil {
			return reply{err: err}
		}
		cc, err := h.hc.AcquireConn(wait, false)
		if err != nil {
			if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns) {
				err = fmt.Errorf("%w (waiting for a connection)", context.DeadlineExceeded)
			}
			return reply{err: err}
		}
		conn, ok := cc.Conn().(*h1Conn)
		if !ok {
			h.hc.CloseConn(cc)
			return reply{err: errors.New("a connection not made by the push client")}
		}
		if !c.unidle(conn, false) || (conn.used && !conn.ready()) {
			h.hc.CloseConn(cc)
			continue
		}
		conn.used = true
		a, reuse := c.exchange(ctx, h, conn, req, resp, deadline)
		if !reuse {
			h.hc.CloseConn(cc)
			return a
		}
		oldest := c.keep(conn)
		h.hc.ReleaseConn(cc)
		if oldest != nil {
			// Closed under its pool, which drops it when it next hands it out or cleans up.
			_ = oldest.Close()
		}
		return a
	}
}

// exchange writes req on conn and reads its answer; keep reports whether conn may carry
// another request.
func (c *h1) exchange(ctx context.Context, h *h1Host, conn *h1Conn, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (a reply, keep bool) {
	if err := conn.SetDeadline(deadline); err != nil {
		return reply{err: err}, false
	}
	// A push ends when ctx does, deadline or not: its I/O fails at once. A connection whose
	// deadline ctx's end may have moved is not kept. A context that is never cancelled needs
	// no watch.
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
		defer func() {
			if !stop() {
				keep = false
			}
		}()
	}

	bw := h.hc.AcquireWriter(conn)
	werr := req.Write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	h.hc.ReleaseWriter(bw)

	br := h.hc.AcquireReader(conn)
	defer h.hc.ReleaseReader(br)
	a, keep = readAnswer(br, resp)
	if werr != nil {
		// The target may have answered before it read the whole request and closed its end:
		// that answer is the push's. Anything else reports why the write failed.
		if a.status != 0 {
			return a, false
		}
		return reply{err: timeoutFor(ctx, deadline, werr)}, false
	}
	if a.err != nil && a.status == 0 {
		a.err = timeoutFor(ctx, deadline, a.err)
	}
	return a, keep
}

// readAnswer reads one final answer from br: its head (interim 1xx answers skipped), and at most
// maxDrain of its body with its trailers. keep reports whether all of it was read, and nothing
// that follows it, so that the connection may carry another request.
func readAnswer(br *bufio.Reader, resp *fasthttp.Response) (a reply, keep bool) {
	r := br
	for interim := 0; ; interim++ {
		err := resp.Header.Read(r)
		var small *fasthttp.ErrSmallBuffer
		if errors.As(err, &small) && r == br {
			// The head is larger than the read buffer. None of it was consumed: it is read
			// again through a buffer of the head limit.
			r = bufio.NewReaderSize(br, maxHead)
			err = resp.Header.Read(r)
		}
		if err != nil {
			return reply{err: fmt.Errorf("read answer head: %w", err)}, false
		}
		code := resp.Header.StatusCode()
		if code >= 200 || code == fasthttp.StatusSwitchingProtocols {
			break
		}
		if interim == 8 {
			return reply{err: errors.New("read answer head: too many interim answers")}, false
		}
	}
	a.status = resp.Header.StatusCode()
	a.retryAfter = string(resp.Header.Peek("Retry-After"))
	switch {
	case a.status < 200:
		// A final 101 hands the connection to another protocol: nothing more is read.
		return a, false
	case a.status == 204 || a.status == 304:
	case resp.ReadBody(r, maxDrain) != nil:
		return a, false
	case resp.Header.ContentLength() == -1 && resp.Header.ReadTrailer(r) != nil:
		return a, false
	}
	return a, r.Buffered() == 0 && br.Buffered() == 0 && !resp.ConnectionClose()
}

// timeoutFor reports err as the end of the push's time when it is a timeout at or past the
// deadline, or ctx ended, so that it reads as context.DeadlineExceeded or Canceled.
func timeoutFor(ctx context.Context, deadline time.Time, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	var ne net.Error
	if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, fasthttp.ErrTimeout) {
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
	}
	return err
}

// sendH1 makes r's push to u through the HTTP/1.1 path, within deadline (zero: none) and ctx; ok
// is false when the target turned out to speak HTTP/2, and nothing was sent.
func (c *Client) sendH1(ctx context.Context, h *h1Host, u *url.URL, r Request, deadline time.Time) (_ Result, ok bool) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("POST")
	req.Header.SetRequestURI(u.RequestURI())
	req.Header.SetHost(u.Host)
	c.headers(ctx, r, func(k, v string) { req.Header.Add(k, v) })
	req.SetBodyRaw(r.Body)
	a := c.h1.roundTrip(ctx, h, req, resp, deadline)
	if errors.Is(a.err, errHTTP2) {
		return Result{}, false
	}
	if a.status == 0 {
		return transportFailure(a.err), true
	}
	return classify(a.status, a.retryAfter, r.Now), true
}
