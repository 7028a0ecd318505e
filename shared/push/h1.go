package push

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// The HTTP/1.1 path. net/http's transport hands every request to two goroutines of its
// connection (a writer and a reader) and answers through channels: in the delivery benchmark's
// profile that machinery, not the network, was most of the engine's CPU. Here the goroutine of
// the push writes the request and reads the answer itself, on a pooled keep-alive connection.
// TLS targets that negotiate HTTP/2 are handed to net/http's transport, which multiplexes them.

// errHTTP2 reports that a TLS target chose HTTP/2: the push goes through net/http instead.
var errHTTP2 = errors.New("target negotiated HTTP/2")

// errMalformed wraps every answer this path cannot read as HTTP/1.x.
var errMalformed = errors.New("malformed HTTP response")

// Limits of the answers read.
const (
	h1BufSize       = 4 << 10          // per connection, for reading
	h1MaxHeaderSize = 1 << 20          // status line and headers of one answer
	h1MaxInterim    = 8                // 1xx answers skipped before the final one
	h1IdleTimeout   = 90 * time.Second // an idle connection older than this is not reused
)

// h1Pool keeps the HTTP/1.1 connections of a Client, per scheme and address.
type h1Pool struct {
	dialer     *net.Dialer
	tlsConfig  *tls.Config
	maxPerHost int

	hosts sync.Map // of *h1Host, by scheme://address
}

// h1Host is one scheme and address: its in-use slots, idle connections and, for TLS, whether
// it speaks HTTP/2.
type h1Host struct {
	slots chan struct{} // one per connection in use: with the idle ones, at most maxPerHost

	mu      sync.Mutex // guards the rest
	idle    []*h1Conn
	probing chan struct{} // closed when the first TLS connection has learnt the protocol
	learnt  bool          // TLS only: the protocol is known
	h2      bool          // TLS only: the target negotiates HTTP/2
	spare   net.Conn      // an HTTP/2 connection the probe made, for net/http to use
}

// h1Conn is one keep-alive connection.
type h1Conn struct {
	raw    net.Conn // the TCP connection, under TLS if any
	nc     net.Conn // what requests go through
	br     *bufio.Reader
	wbuf   []byte
	reused bool
	idleAt time.Time
}

func (p *h1Pool) host(key string) *h1Host {
	if h, ok := p.hosts.Load(key); ok {
		return h.(*h1Host)
	}
	h, _ := p.hosts.LoadOrStore(key, &h1Host{slots: make(chan struct{}, p.maxPerHost)})
	return h.(*h1Host)
}

// closeIdle closes the idle connections and the spare HTTP/2 ones.
func (p *h1Pool) closeIdle() {
	var conns []net.Conn
	p.hosts.Range(func(_, v any) bool {
		h := v.(*h1Host)
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.idle {
			conns = append(conns, c.nc)
		}
		h.idle = nil
		if h.spare != nil {
			conns = append(conns, h.spare)
			h.spare = nil
		}
		return true
	})
	for _, c := range conns {
		_ = c.Close()
	}
}

// takeSpare returns the HTTP/2 connection a probe made to addr, if it is still unused.
func (p *h1Pool) takeSpare(addr string) net.Conn {
	v, ok := p.hosts.Load("https://" + addr)
	if !ok {
		return nil
	}
	h := v.(*h1Host)
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.spare
	h.spare = nil
	return c
}

// hostAddr is the address of u's host, with the scheme's default port when it has none.
func hostAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// dialTLS connects to addr and completes a TLS handshake offering protos.
func (p *h1Pool) dialTLS(ctx context.Context, addr string, protos []string) (raw net.Conn, tc *tls.Conn, err error) {
	raw, err = p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	cfg := p.tlsConfig.Clone()
	cfg.ServerName, _, _ = net.SplitHostPort(addr)
	cfg.NextProtos = protos
	tc = tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, nil, err
	}
	return raw, tc, nil
}

// get returns a connection to u's host for one request, within ctx and deadline (zero: none),
// and the host to give it back to with put. It returns errHTTP2 when the host is a TLS target
// speaking HTTP/2.
func (p *h1Pool) get(ctx context.Context, deadline time.Time, u *url.URL) (*h1Host, *h1Conn, error) {
	addr := hostAddr(u)
	tlsTarget := u.Scheme == "https"
	h := p.host(u.Scheme + "://" + addr)
	select {
	case h.slots <- struct{}{}:
		// A free slot and an idle connection, the common case, need no timer.
		if c := p.idleConn(h, tlsTarget); c != nil {
			return h, c, nil
		}
	default:
		ctx, cancel := bound(ctx, deadline)
		defer cancel()
		select {
		case h.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	ctx, cancel := bound(ctx, deadline)
	defer cancel()
	c, err := p.conn(ctx, h, addr, tlsTarget)
	if err != nil {
		<-h.slots
		return nil, nil, err
	}
	return h, c, nil
}

// idleConn returns an idle connection of h fit for another request, or nil.
func (p *h1Pool) idleConn(h *h1Host, tlsTarget bool) *h1Conn {
	now := time.Now()
	// Bounded: each pass takes a connection off the list, which holds at most maxPerHost.
	for range p.maxPerHost + 1 {
		h.mu.Lock()
		n := len(h.idle)
		if n == 0 || (tlsTarget && h.learnt && h.h2) {
			h.mu.Unlock()
			return nil
		}
		c := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		if now.Sub(c.idleAt) < h1IdleTimeout && alive(c.raw) {
			return c
		}
		_ = c.nc.Close()
	}
	return nil
}

// conn returns an idle connection of h or a new one, or errHTTP2 once h is known to speak
// HTTP/2.
func (p *h1Pool) conn(ctx context.Context, h *h1Host, addr string, tlsTarget bool) (*h1Conn, error) {
	// Bounded: a pass ends with a connection, an error, or a probe that ended; each failed
	// probe is another task's, and there are at most maxPerHost of them.
	for range p.maxPerHost + 16 {
		if c := p.idleConn(h, tlsTarget); c != nil {
			return c, nil
		}
		h.mu.Lock()
		if tlsTarget && h.learnt && h.h2 {
			h.mu.Unlock()
			return nil, errHTTP2
		}
		if !tlsTarget {
			h.mu.Unlock()
			raw, err := p.dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return newH1Conn(raw, raw), nil
		}
		if h.learnt {
			h.mu.Unlock()
			raw, tc, err := p.dialTLS(ctx, addr, []string{"http/1.1"})
			if err != nil {
				return nil, err
			}
			return newH1Conn(raw, tc), nil
		}
		if wait := h.probing; wait != nil {
			h.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// The first TLS connection to the host learns whether it speaks HTTP/2; the others wait.
		done := make(chan struct{})
		h.probing = done
		h.mu.Unlock()
		raw, tc, err := p.dialTLS(ctx, addr, []string{"h2", "http/1.1"})
		h.mu.Lock()
		h.probing = nil
		close(done)
		if err != nil {
			h.mu.Unlock()
			return nil, err
		}
		h.learnt = true
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			h.h2 = true
			old := h.spare
			h.spare = tc
			h.mu.Unlock()
			if old != nil {
				_ = old.Close()
			}
			return nil, errHTTP2
		}
		h.mu.Unlock()
		return newH1Conn(raw, tc), nil
	}
	return nil, errors.New("no connection to the target")
}

func newH1Conn(raw, nc net.Conn) *h1Conn {
	return &h1Conn{raw: raw, nc: nc, br: bufio.NewReaderSize(nc, h1BufSize)}
}

// put gives the slot back, and the connection too when it can carry another request.
func (p *h1Pool) put(h *h1Host, c *h1Conn, reusable bool) {
	if reusable {
		c.reused = true
		c.idleAt = time.Now()
		h.mu.Lock()
		if len(h.idle) < p.maxPerHost {
			h.idle = append(h.idle, c)
			c = nil
		}
		h.mu.Unlock()
	}
	if c != nil {
		_ = c.nc.Close()
	}
	<-h.slots
}

// h1Response is what a push needs of an answer.
type h1Response struct {
	status     int
	retryAfter string
}

// roundTrip writes the request on c and reads the answer, within ctx. It reports whether c
// can carry another request, and whether the request may have reached the target.
// The request line and headers are in c.wbuf; the request ends at ctx's end or deadline (zero:
// none), whichever comes first.
func (c *h1Conn) roundTrip(ctx context.Context, deadline time.Time, body []byte) (resp h1Response, reusable, written bool, err error) {
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			// Cancelled: the deadline may be set at any moment from now on.
			reusable = false
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			end := ctx.Err()
			if end == nil {
				end = context.DeadlineExceeded
			}
			err = fmt.Errorf("%w (%w)", end, err)
		}
	}()

	c.wbuf = append(c.wbuf, body...)
	if n, err := c.nc.Write(c.wbuf); err != nil {
		return resp, false, n > 0, err
	}
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // do not keep a large payload's buffer for every later push
	}
	resp, reusable, err = readResponse(c.br)
	return resp, reusable, true, err
}

// readResponse reads one final answer from br, skipping interim 1xx answers, and drains its
// body up to maxDrain bytes. reusable says whether the connection is at the next answer.
func readResponse(br *bufio.Reader) (resp h1Response, reusable bool, err error) {
	for range h1MaxInterim {
		var h head
		if h, err = readHead(br); err != nil {
			return resp, false, err
		}
		if h.status >= 100 && h.status <= 199 && h.status != 101 {
			continue
		}
		resp = h1Response{status: h.status, retryAfter: h.retryAfter}
		reusable, err = h.drain(br)
		return resp, reusable, err
	}
	return resp, false, fmt.Errorf("more than %d interim answers: %w", h1MaxInterim, errMalformed)
}

// head is what is read of an answer's status line and headers.
type head struct {
	status        int
	keepAlive     bool
	chunked       bool
	contentLength int64 // -1: none given
	retryAfter    string
}

func readHead(br *bufio.Reader) (head, error) {
	h := head{contentLength: -1}
	total := 0
	line, long, err := readLine(br, &total)
	if err != nil {
		return h, err
	}
	// HTTP/1.x NNN reason
	if long || len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return h, fmt.Errorf("status line: %w", errMalformed)
	}
	h.keepAlive = line[7] == '1'
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return h, fmt.Errorf("status code: %w", errMalformed)
		}
		h.status = h.status*10 + int(d-'0')
	}
	if h.status < 100 {
		return h, fmt.Errorf("status code %d: %w", h.status, errMalformed)
	}
	http10 := line[7] == '0'
	for {
		line, long, err := readLine(br, &total)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if long {
			// A long header is one this path ignores (a cookie, say), unless it names one it
			// reads: framing read wrong could mix two answers up.
			if !ok || isFraming(name) {
				return h, fmt.Errorf("header line longer than %d bytes: %w", h1BufSize, errMalformed)
			}
			continue
		}
		if !ok || len(name) == 0 || name[len(name)-1] == ' ' || name[len(name)-1] == '\t' {
			return h, fmt.Errorf("header line: %w", errMalformed)
		}
		value = bytes.TrimSpace(value)
		switch {
		case equalFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (h.contentLength >= 0 && n != h.contentLength) {
				return h, fmt.Errorf("content-length: %w", errMalformed)
			}
			h.contentLength = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return h, fmt.Errorf("transfer-encoding %q: %w", value, errMalformed)
			}
			h.chunked = true
		case equalFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				if equalFold(tok, "close") {
					h.keepAlive = false
				} else if http10 && equalFold(tok, "keep-alive") {
					h.keepAlive = true
				}
			}
		case equalFold(name, "retry-after"):
			h.retryAfter = string(value)
		}
	}
}

// readLine reads one line of a head without its CRLF, counting the head's bytes in total. A
// line longer than br's buffer is skipped and reported as long, with its first bytes only.
func readLine(br *bufio.Reader, total *int) (line []byte, long bool, err error) {
	line, err = br.ReadSlice('\n')
	*total += len(line)
	if errors.Is(err, bufio.ErrBufferFull) {
		long = true
		start := append([]byte(nil), line[:32]...)
		for errors.Is(err, bufio.ErrBufferFull) && *total <= h1MaxHeaderSize {
			line, err = br.ReadSlice('\n')
			*total += len(line)
		}
		line = append(start, '\n')
	}
	switch {
	case err == io.EOF:
		return nil, false, io.ErrUnexpectedEOF
	case err != nil:
		return nil, false, err
	case *total > h1MaxHeaderSize:
		return nil, false, fmt.Errorf("head longer than %d bytes: %w", h1MaxHeaderSize, errMalformed)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, long, nil
}

// drain reads the body of an answer with head h, up to maxDrain bytes, and reports whether the
// connection is then at the next answer.
func (h head) drain(br *bufio.Reader) (bool, error) {
	switch {
	case h.status == 204 || h.status == 304:
		return h.keepAlive, nil
	case h.chunked:
		return h.keepAlive && drainChunked(br), nil
	case h.contentLength >= 0:
		if h.contentLength > maxDrain {
			return false, nil
		}
		if _, err := br.Discard(int(h.contentLength)); err != nil {
			return false, nil // the status arrived: a short body only ends the connection
		}
		return h.keepAlive, nil
	default:
		// The body runs to the end of the connection.
		_, _ = io.CopyN(io.Discard, br, maxDrain)
		return false, nil
	}
}

// drainChunked reads a chunked body and its trailers, up to maxDrain bytes of chunk data, and
// reports whether it reached the end.
func drainChunked(br *bufio.Reader) bool {
	tp := textproto.NewReader(br)
	read := int64(0)
	for range maxDrain {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return false
		}
		if n == 0 {
			// Trailers, then the empty line.
			_, err := tp.ReadMIMEHeader()
			return err == nil
		}
		if read += n; read > maxDrain {
			return false
		}
		if _, err := br.Discard(int(n)); err != nil {
			return false
		}
		if crlf, err := br.ReadSlice('\n'); err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return false
		}
	}
	return false
}

// isFraming reports whether name is a header readHead reads.
func isFraming(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding") || equalFold(name, "connection") || equalFold(name, "retry-after")
}

// equalFold reports whether b is s, ignoring ASCII case; s must be lower case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
