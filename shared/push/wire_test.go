package push

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rawTarget is a TCP server on 127.0.0.1 that answers each request with exactly the bytes its
// handler writes, so a test can send what no well-behaved server would.
type rawTarget struct {
	url   string
	conns atomic.Int32  // connections accepted
	eof   chan struct{} // gets a value each time a client closed a connection the server kept
}

// rawHandler answers one request: i counts the requests of the whole server from 0, req's body
// is still unread. It reports whether the server keeps the connection for another request
// (then the server reads the rest of the body first).
type rawHandler func(i int, c net.Conn, req *http.Request) (keep bool)

// newRawTarget starts a rawTarget; rcvBuf, when positive, shrinks the receive buffer of the
// accepted connections, so that a client writing a large body blocks soon.
func newRawTarget(t *testing.T, rcvBuf int, h rawHandler) *rawTarget {
	t.Helper()
	return startRawTarget(t, rcvBuf, nil, h)
}

// newRawTLSTarget is newRawTarget over TLS offering HTTP/1.1 only, and the roots trusting it.
func newRawTLSTarget(t *testing.T, h rawHandler) (*rawTarget, *x509.CertPool) {
	t.Helper()
	cert := httptest.NewUnstartedServer(http.NotFoundHandler())
	cert.StartTLS()
	cert.Close() // only its certificate is used
	cfg := &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"http/1.1"}}
	s := startRawTarget(t, 0, cfg, h)
	s.url = strings.Replace(s.url, "http://", "https://", 1)
	return s, trusting(cert)
}

func startRawTarget(t *testing.T, rcvBuf int, tlsConfig *tls.Config, h rawHandler) *rawTarget {
	t.Helper()
	lc := net.ListenConfig{}
	if rcvBuf > 0 {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawTarget{url: "http://" + ln.Addr().String() + "/hook", eof: make(chan struct{}, 64)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	var requests atomic.Int32
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tlsConfig != nil {
				c = tls.Server(c, tlsConfig)
			}
			s.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if errors.Is(err, io.EOF) {
						s.eof <- struct{}{}
						return
					}
					if err != nil {
						return
					}
					if !h(int(requests.Add(1)-1), c, req) {
						return
					}
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						return
					}
				}
			})
		}
	})
	return s
}

// answer is a rawHandler writing the same bytes to every request and keeping the connection.
func answer(b string) rawHandler {
	return func(_ int, c net.Conn, _ *http.Request) bool {
		_, err := io.WriteString(c, b)
		return err == nil
	}
}

const answer503 = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"

func push(c *Client, url, id string, body []byte, timeout time.Duration) Result {
	return c.Send(context.Background(), Request{ID: id, URL: url, Body: body, Now: time.Now(), Timeout: timeout})
}

// A target may send more than the answer it declared. Whatever follows it must never be taken
// as the answer to the next push on the same connection: the second push here must get its own
// 503, not the 200 that trailed the first answer.
func TestSendNeverTakesLeftoverBytesForTheNextAnswer(t *testing.T) {
	t.Parallel()
	const trailing = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name   string
		first  string // the answer to the first push, with what trails it
		status int    // the first push's status
	}{
		{"a second answer", "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n" + trailing, 202},
		{"204 with a body", "HTTP/1.1 204 No Content\r\n\r\n" + trailing, 204},
		{"304 with a body", "HTTP/1.1 304 Not Modified\r\n\r\n" + trailing, 304},
		{"body longer than its content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + trailing, 200},
		{"content-length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len("0\r\n\r\n"+trailing)) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + trailing, 200},
		{"chunked with bytes after the last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + trailing, 200},
	}
	for _, tt := range tests {
		handler := func(_ int, c net.Conn, req *http.Request) bool {
			b := answer503
			if req.Header.Get(HeaderID) == "msg_first" {
				b = tt.first
			}
			_, err := io.WriteString(c, b)
			return err == nil
		}
		check := func(t *testing.T, first, second Result) {
			t.Helper()
			if first.StatusCode != tt.status {
				t.Errorf("first push: %+v, want status %d", first, tt.status)
			}
			if second.StatusCode != 503 || second.Outcome != Retryable {
				t.Errorf("second push: %+v, want its own 503, retryable", second)
			}
		}
		t.Run(tt.name+", one after the other", func(t *testing.T) {
			t.Parallel()
			srv := newRawTarget(t, 0, handler)
			c := NewClient(Options{AllowPrivate: true, MaxPerHost: 1})
			t.Cleanup(c.CloseIdleConnections)
			for range 10 {
				first := push(c, srv.url, "msg_first", []byte(`{}`), 10*time.Second)
				second := push(c, srv.url, "msg_second", []byte(`{}`), 10*time.Second)
				check(t, first, second)
			}
		})
		t.Run(tt.name+", over TLS", func(t *testing.T) {
			t.Parallel()
			srv, roots := newRawTLSTarget(t, handler)
			c := NewClient(Options{AllowPrivate: true, MaxPerHost: 1, RootCAs: roots})
			t.Cleanup(c.CloseIdleConnections)
			for range 10 {
				first := push(c, srv.url, "msg_first", []byte(`{}`), 10*time.Second)
				second := push(c, srv.url, "msg_second", []byte(`{}`), 10*time.Second)
				check(t, first, second)
			}
		})
		t.Run(tt.name+", the second waiting for the connection", func(t *testing.T) {
			t.Parallel()
			srv := newRawTarget(t, 0, handler)
			c := NewClient(Options{AllowPrivate: true, MaxPerHost: 1})
			t.Cleanup(c.CloseIdleConnections)
			for range 10 {
				var first, second Result
				var wg sync.WaitGroup
				wg.Go(func() { first = push(c, srv.url, "msg_first", []byte(`{}`), 10*time.Second) })
				wg.Go(func() { second = push(c, srv.url, "msg_second", []byte(`{}`), 10*time.Second) })
				wg.Wait()
				check(t, first, second)
			}
		})
	}
}

// The same when the extra answer comes after the first push has read its own: it reaches an
// idle connection, and the next push must still get its own answer.
func TestSendNeverTakesALateExtraAnswerForTheNextAnswer(t *testing.T) {
	t.Parallel()
	read := make(chan struct{})  // the first push has its answer
	wrote := make(chan struct{}) // the extra answer is written
	srv := newRawTarget(t, 0, func(_ int, c net.Conn, req *http.Request) bool {
		if req.Header.Get(HeaderID) != "msg_first" {
			_, err := io.WriteString(c, answer503)
			return err == nil
		}
		if _, err := io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return false
		}
		<-read
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		wrote <- struct{}{}
		return err == nil
	})
	c := NewClient(Options{AllowPrivate: true, MaxPerHost: 1})
	t.Cleanup(c.CloseIdleConnections)
	for range 10 {
		first := push(c, srv.url, "msg_first", []byte(`{}`), 10*time.Second)
		read <- struct{}{}
		<-wrote
		// Bytes still on their way when the second request goes out are, to any client, an
		// answer to it. Once they have arrived, a client that watches its idle connections
		// closes this one; one that does not would take them for the second push's answer, so
		// the wait is bounded and the push goes ahead either way.
		select {
		case <-srv.eof:
		case <-time.After(5 * time.Second):
		}
		second := push(c, srv.url, "msg_second", []byte(`{}`), 10*time.Second)
		if first.StatusCode != 202 || second.StatusCode != 503 || second.Outcome != Retryable {
			t.Fatalf("first push %+v, second %+v; want 202, then the second's own 503", first, second)
		}
	}
}

// endless writes head and then filler until the client stops reading, at most 64 MiB, and
// reports how many bytes of filler it managed to write.
func endless(head, filler string, wrote chan<- int64) rawHandler {
	return func(_ int, c net.Conn, _ *http.Request) bool {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(64 << 10)
		}
		n := int64(0)
		defer func() { wrote <- n }()
		if _, err := io.WriteString(c, head); err != nil {
			return false
		}
		chunk := []byte(strings.Repeat(filler, (32<<10)/len(filler)))
		for n < 64<<20 {
			m, err := c.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		return false
	}
}

// Whatever a target sends, a push reads a bounded amount of it: a status line and a head within
// the head limit, a drained body and its trailers within small fixed limits.
func TestSendBoundsWhatItReads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		head   string
		filler string
		status int
	}{
		{"endless chunked trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: ", "t", 200},
		{"endless trailer block", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n", "X-T: t\r\n", 200},
		{"endless header", "HTTP/1.1 200 OK\r\nX-Header: ", "h", 0},
		{"endless header block", "HTTP/1.1 200 OK\r\n", "X-H: h\r\n", 0},
		{"endless body, content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n", "b", 200},
		{"endless body to the end of the connection", "HTTP/1.1 200 OK\r\n\r\n", "b", 200},
		{"endless chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffff\r\n", "b", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wrote := make(chan int64, 1)
			srv := newRawTarget(t, 0, endless(tt.head, tt.filler, wrote))
			c := NewClient(Options{AllowPrivate: true})
			t.Cleanup(c.CloseIdleConnections)
			res := push(c, srv.url, "msg_x", []byte(`{}`), 20*time.Second)
			if res.StatusCode != tt.status {
				t.Errorf("Send = %+v, want status %d", res, tt.status)
			}
			if tt.status == 0 && (res.Outcome != Retryable || res.Err == nil) {
				t.Errorf("Send = %+v, want a retryable error", res)
			}
			if errors.Is(res.Err, context.DeadlineExceeded) {
				t.Errorf("Send waited for its deadline: %v", res.Err)
			}
			c.CloseIdleConnections()
			select {
			case n := <-wrote:
				// What the client did not read is at most the socket buffers of both ends.
				if n >= 8<<20 {
					t.Errorf("the target wrote %d bytes before the client stopped reading", n)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the target was still writing 30 s after the push ended")
			}
		})
	}
}

// A target may answer before it has read the whole body (413 for a body too large, or any
// status): the push gets that answer, not a connection error, whichever path carries the body
// (a small one is written whole before the answer is read, a large one is not).
func TestSendReportsAnAnswerSentBeforeTheBodyWasRead(t *testing.T) {
	t.Parallel()
	bodies := map[string][]byte{
		"small body": []byte(`{"d":"` + strings.Repeat("x", maxH1Body-8) + `"}`),
		"large body": []byte(`{"d":"` + strings.Repeat("x", 16<<20) + `"}`),
	}
	tests := []struct {
		name   string
		answer string
		close  bool // the target closes its write side after answering
		want   Outcome
	}{
		{"413", "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", true, Permanent},
		{"400 kept open", "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad", false, Permanent},
		{"201", "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", false, Delivered},
		{"503", "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n", true, Retryable},
	}
	for name, body := range bodies {
		for _, tt := range tests {
			t.Run(name+", "+tt.name, func(t *testing.T) {
				t.Parallel()
				stop := make(chan struct{})
				srv := newRawTarget(t, 16<<10, func(_ int, c net.Conn, _ *http.Request) bool {
					if _, err := io.WriteString(c, tt.answer); err != nil {
						return false
					}
					if tt.close {
						_ = c.(*net.TCPConn).CloseWrite()
					}
					<-stop // and never read the body
					return false
				})
				t.Cleanup(func() { close(stop) }) // runs before the server's cleanup
				c := NewClient(Options{AllowPrivate: true})
				t.Cleanup(c.CloseIdleConnections)
				res := push(c, srv.url, "msg_x", body, 20*time.Second)
				status, _ := strconv.Atoi(tt.answer[9:12])
				if res.StatusCode != status || res.Outcome != tt.want {
					t.Fatalf("Send = %+v, want status %d, %v", res, status, tt.want)
				}
			})
		}
	}
}

// What RFC 9112 lets a client accept is accepted: a refused 2xx would be pushed again.
func TestSendAcceptsWhatHTTP11Allows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
		status int
	}{
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\tthree\r\nContent-Length: 0\r\n\r\n", 200},
		{"6 KiB Content-Security-Policy-Report-Only", "HTTP/1.1 200 OK\r\nContent-Security-Policy-Report-Only: default-src 'self'; report-uri /r " + strings.Repeat("x", 6<<10) + "\r\nContent-Length: 0\r\n\r\n", 200},
		{"64 KiB header value", "HTTP/1.1 201 Created\r\nX-Long: " + strings.Repeat("v", 64<<10) + "\r\nContent-Length: 0\r\n\r\n", 201},
		{"HTTP/1.2 status line", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", 200},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", 204},
		{"interim answers first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawTarget(t, 0, answer(tt.answer))
			c := NewClient(Options{AllowPrivate: true})
			t.Cleanup(c.CloseIdleConnections)
			for i := range 2 {
				res := push(c, srv.url, "msg_x", []byte(`{}`), 10*time.Second)
				if res.Outcome != Delivered || res.StatusCode != tt.status || res.Err != nil {
					t.Fatalf("push %d: Send = %+v, want delivered %d", i+1, res, tt.status)
				}
			}
		})
	}
}

// A final status outside 200-599 ends the push at once as permanent: 101 Switching Protocols
// must not wait for a body to the end of the connection.
func TestSendTreatsStatusesOutside200To599AsPermanent(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 600 Six Hundred\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 700 Seven\r\nRetry-After: 5\r\nContent-Length: 2\r\n\r\nno",
	} {
		t.Run(answer[9:12], func(t *testing.T) {
			t.Parallel()
			stop := make(chan struct{})
			srv := newRawTarget(t, 0, func(_ int, c net.Conn, _ *http.Request) bool {
				_, _ = io.WriteString(c, answer)
				<-stop // the connection stays open: the push must not wait for its end
				return false
			})
			t.Cleanup(func() { close(stop) }) // runs before the server's cleanup
			c := NewClient(Options{AllowPrivate: true})
			t.Cleanup(c.CloseIdleConnections)
			const timeout = 20 * time.Second
			res := push(c, srv.url, "msg_x", []byte(`{}`), timeout)
			status, _ := strconv.Atoi(answer[9:12])
			if res.Outcome != Permanent || res.StatusCode != status || !errors.Is(res.Err, ErrStatus) || res.RetryAfter != 0 {
				t.Fatalf("Send = %+v, want permanent %d", res, status)
			}
			if res.Duration >= timeout/2 {
				t.Fatalf("Send took %s, as if it waited for the connection's end", res.Duration)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	tests := map[Outcome][]int{
		Delivered: {200, 201, 204, 299},
		Retryable: {408, 425, 429, 500, 502, 503, 599},
		Permanent: {100, 101, 103, 199, 300, 301, 304, 400, 404, 409, 413, 499, 600, 700, 999},
	}
	for want, codes := range tests {
		for _, code := range codes {
			res := classify(code, "7", now)
			if res.Outcome != want || res.StatusCode != code {
				t.Errorf("classify(%d) = %+v, want %v", code, res, want)
			}
			if (want == Retryable) != (res.RetryAfter == 7*time.Second) {
				t.Errorf("classify(%d) retry after %s", code, res.RetryAfter)
			}
			if (want == Delivered) != (res.Err == nil) {
				t.Errorf("classify(%d) Err = %v", code, res.Err)
			}
		}
	}
}

// A message's own headers never replace the signature or framing headers, on either protocol,
// signed or not, and never make the attempt fail.
func TestSendNeverForwardsReservedHeaders(t *testing.T) {
	t.Parallel()
	caller := map[string]string{
		"webhook-id": "msg_forged", "Webhook-Timestamp": "1", "webhook-signature": "v1,forged",
		"Host": "evil.example", "Content-Length": "1", "Transfer-Encoding": "chunked",
		"Connection": "close", "Upgrade": "websocket", "Keep-Alive": "timeout=1", "Te": "trailers",
		"X-Tenant": "acme",
	}
	key := specKey(t)
	got := make(chan *http.Request, 1)
	record := func(r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r
	}
	h1 := newRawTarget(t, 0, func(_ int, c net.Conn, r *http.Request) bool {
		record(r)
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return err == nil
	})
	h2 := newHTTP2Target(t, func(w http.ResponseWriter, r *http.Request) { record(r) })
	for _, target := range []struct {
		name, url string
		proto     int
	}{{"HTTP/1.1", h1.url, 1}, {"HTTP/2", h2.url, 2}} {
		for _, keys := range [][][]byte{nil, {key}} {
			c := NewClient(Options{AllowPrivate: true, Keys: keys, RootCAs: h2.roots})
			t.Cleanup(c.CloseIdleConnections)
			now := time.Unix(specTimestamp, 0)
			body := []byte(specBody)
			res := c.Send(context.Background(), Request{ID: specID, URL: target.url, Headers: caller, Body: body, Now: now, Timeout: 10 * time.Second})
			if res.Outcome != Delivered {
				t.Fatalf("%s, %d keys: Send = %+v", target.name, len(keys), res)
			}
			r := <-got
			u := r.URL
			if r.ProtoMajor != target.proto {
				t.Errorf("%s: the request arrived over %s", target.name, r.Proto)
			}
			want := map[string][]string{
				"Webhook-Id":        {specID},
				"Webhook-Timestamp": {strconv.Itoa(specTimestamp)},
				"Webhook-Signature": nil,
				"Transfer-Encoding": nil,
				"Connection":        nil,
				"Upgrade":           nil,
				"Keep-Alive":        nil,
				"Te":                nil,
				"X-Tenant":          {"acme"},
			}
			if keys != nil {
				want["Webhook-Signature"] = []string{specSignature}
			}
			for k, v := range want {
				if g := r.Header.Values(k); strings.Join(g, "|") != strings.Join(v, "|") {
					t.Errorf("%s, %d keys: header %s = %q, want %q", target.name, len(keys), k, g, v)
				}
			}
			if r.Host == "evil.example" || r.ContentLength != int64(len(body)) || len(r.TransferEncoding) != 0 {
				t.Errorf("%s: host %q, content length %d, transfer encoding %q, url %s", target.name, r.Host, r.ContentLength, r.TransferEncoding, u)
			}
		}
	}
}

// http2Target is a TLS server on 127.0.0.1 that negotiates HTTP/2, and the roots trusting it.
type http2Target struct {
	url   string
	roots *x509.CertPool
}

func newHTTP2Target(t *testing.T, h http.HandlerFunc) *http2Target {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &http2Target{url: srv.URL + "/hook", roots: trusting(srv)}
}

func TestNewClientSizesItsPool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		o             Options
		perHost, idle int
		idleTimeout   time.Duration
	}{
		{"defaults", Options{}, 128, 512, 90 * time.Second},
		{"sized", Options{MaxPerHost: 7, MaxIdleConns: 300, IdleTimeout: time.Second}, 7, 300, time.Second},
		{"idle timeout capped", Options{IdleTimeout: time.Hour}, 128, 512, 90 * time.Second},
	}
	for _, tt := range tests {
		c := NewClient(tt.o)
		if c.h1.perHost != tt.perHost || c.h1.maxIdle != tt.idle || c.h1.idleFor != tt.idleTimeout {
			t.Errorf("%s: HTTP/1.1 path: per host %d, idle %d, idle timeout %s", tt.name, c.h1.perHost, c.h1.maxIdle, c.h1.idleFor)
		}
		tr := c.transport
		if tr.MaxConnsPerHost != tt.perHost || tr.MaxIdleConnsPerHost != tt.perHost || tr.MaxIdleConns != tt.idle || tr.IdleConnTimeout != tt.idleTimeout {
			t.Errorf("%s: per host %d (idle %d), idle %d, idle timeout %s", tt.name, tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tr.IdleConnTimeout)
		}
		if tr.Proxy != nil || !tr.DisableCompression || tr.MaxResponseHeaderBytes != maxHead {
			t.Errorf("%s: proxy set %v, compression disabled %v, head limit %d", tt.name, tr.Proxy != nil, tr.DisableCompression, tr.MaxResponseHeaderBytes)
		}
	}
}

// awaitEOF waits until srv saw a client close one of its connections.
func awaitEOF(t *testing.T, srv *rawTarget, what string) {
	t.Helper()
	select {
	case <-srv.eof:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: the target's connection was still open after 30 s", what)
	}
}

func TestSendClosesIdleConnections(t *testing.T) {
	t.Parallel()
	srv := newRawTarget(t, 0, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	c := NewClient(Options{AllowPrivate: true, IdleTimeout: 50 * time.Millisecond})
	t.Cleanup(c.CloseIdleConnections)
	if res := push(c, srv.url, "msg_x", []byte(`{}`), 10*time.Second); res.Outcome != Delivered {
		t.Fatalf("Send = %+v", res)
	}
	awaitEOF(t, srv, "idle past the idle timeout")
}

func TestSendCapsIdleConnectionsAcrossHosts(t *testing.T) {
	t.Parallel()
	a := newRawTarget(t, 0, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	b := newRawTarget(t, 0, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	c := NewClient(Options{AllowPrivate: true, MaxIdleConns: 1})
	t.Cleanup(c.CloseIdleConnections)
	for _, srv := range []*rawTarget{a, b} {
		if res := push(c, srv.url, "msg_x", []byte(`{}`), 10*time.Second); res.Outcome != Delivered {
			t.Fatalf("Send = %+v", res)
		}
	}
	awaitEOF(t, a, "a second host's idle connection over the cap of 1")
	select {
	case <-b.eof:
		t.Fatal("the newest idle connection was closed too")
	default:
	}
}

// A process that meets many hosts keeps a bounded list of them: hosts with no connection, unused
// for twice the idle timeout, are forgotten as the list grows.
func TestSendForgetsHostsItNoLongerUses(t *testing.T) {
	t.Parallel()
	c := NewClient(Options{AllowPrivate: true})
	hostURL := func(i int) *url.URL {
		return &url.URL{Scheme: "http", Host: "h" + strconv.Itoa(i) + ".invalid"}
	}
	for i := range 319 {
		c.h1.host(hostURL(i))
	}
	c.h1.mu.Lock()
	for _, h := range c.h1.hosts {
		h.used.Store(0)
	}
	c.h1.mu.Unlock()
	c.h1.host(hostURL(319))
	c.h1.mu.Lock()
	n := len(c.h1.hosts)
	c.h1.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d hosts kept after 319 went unused, want the one just used", n)
	}
}
