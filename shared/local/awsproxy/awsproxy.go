// Package awsproxy is an HTTP proxy on loopback in front of an AWS endpoint (an emulator) that
// counts the requests it serves by operation, with their sizes, so that what a process sent to
// AWS can be checked against what AWS (here, the emulator) received.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package awsproxy

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Count is what the proxy served of one operation.
type Count struct {
	Requests int   // requests forwarded, whatever their answer
	Bytes    int64 // request and answer bodies, summed
	// Chunks64K sums, over the requests, the larger of request and answer body in 64 KiB
	// chunks, at least one a request: the unit SQS and EventBridge bill by.
	Chunks64K int
}

// Proxy forwards every request made to URL to its upstream and counts it under its operation,
// "<service>.<operation>" as the AWS SDK names it ("SQS.SendMessageBatch"): the operation is read
// from the X-Amz-Target header of the JSON protocols (DynamoDB, SQS, EventBridge) or the Action
// parameter of the query protocol. It is safe for concurrent use.
type Proxy struct {
	service string
	ln      net.Listener
	srv     *http.Server

	mu       sync.Mutex
	counts   map[string]Count
	inFlight int        // requests being served, not yet counted
	idle     *sync.Cond // on mu: signalled when inFlight drops to 0
}

// ErrUpstream is returned by Start for an upstream that is not an http(s) URL with a host.
var ErrUpstream = errors.New("awsproxy: upstream is not an http(s) URL with a host")

// Start serves a Proxy for service (the SDK's service id, such as "DynamoDB") on a free loopback
// port, forwarding to the endpoint URL upstream.
func Start(service, upstream string) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%w: %q", ErrUpstream, upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("awsproxy: listen for %s: %w", service, err)
	}
	p := &Proxy{service: service, ln: ln, counts: map[string]Count{}}
	p.idle = sync.NewCond(&p.mu)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // SigV4 signed the Host the client dialled
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil { // else the client went away: nothing to answer
				http.Error(w, err.Error(), http.StatusBadGateway)
			}
		},
	}
	p.srv = &http.Server{Handler: p.counting(rp), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL returns the endpoint URL to give a client in place of the upstream's.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Counts returns what the proxy served so far, by operation. A request is counted once its
// answer is written, and a caller can read the whole answer just before that (the proxy flushes
// as it copies), so Counts first waits until no request is in flight: every answer a caller has
// read is counted. Call it once the callers are done; under steady traffic it waits for a lull.
func (p *Proxy) Counts() map[string]Count {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.inFlight > 0 {
		p.idle.Wait()
	}
	return maps.Clone(p.counts)
}

// Close stops the proxy; requests in flight are cut.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// chunk is the billing unit of SQS and EventBridge payloads.
const chunk = 64 << 10

func (p *Proxy) counting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := p.service + "." + Operation(r)
		p.mu.Lock()
		p.inFlight++
		p.mu.Unlock()
		defer func() { // also when ReverseProxy panics with http.ErrAbortHandler (client gone)
			p.mu.Lock()
			if p.inFlight--; p.inFlight == 0 {
				p.idle.Broadcast()
			}
			p.mu.Unlock()
		}()
		body := &countingReader{r: r.Body}
		r.Body = body
		cw := &countingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		larger := max(body.n, cw.n)
		p.mu.Lock()
		c := p.counts[op]
		c.Requests++
		c.Bytes += body.n + cw.n
		c.Chunks64K += max(1, int((larger+chunk-1)/chunk))
		p.counts[op] = c
		p.mu.Unlock()
	})
}

// Operation returns the AWS operation r calls: the part of X-Amz-Target after its last dot
// ("DynamoDB_20120810.PutItem" → "PutItem"), else the query protocol's Action parameter, else
// "unknown".
func Operation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return t[strings.LastIndexByte(t, '.')+1:]
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	return "unknown"
}

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
