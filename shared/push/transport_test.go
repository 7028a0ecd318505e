package push

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// answeringTarget is a rawTarget that answers every request with the same bytes.
type answeringTarget struct {
	*rawTarget
	closed chan struct{} // gets a value each time the target closed a connection after answering
}

// newRawServer starts an answeringTarget that closes the connection after each answer when
// closeAfter is set.
func newRawServer(t *testing.T, answer string, closeAfter bool) *answeringTarget {
	t.Helper()
	a := &answeringTarget{closed: make(chan struct{}, 16)}
	a.rawTarget = newRawTarget(t, 0, func(_ int, c net.Conn, _ *http.Request) bool {
		if _, err := io.WriteString(c, answer); err != nil {
			return false
		}
		if closeAfter {
			_ = c.Close()
			a.closed <- struct{}{}
			return false
		}
		return true
	})
	return a
}

func TestSendReadsHTTP11Answers(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", maxDrain+1)
	chunked := func(body string) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.ToUpper(strconv.FormatInt(int64(len(body)), 16)) + ";ext=1\r\n" + body + "\r\n0\r\nX-Trailer: t\r\n\r\n"
	}
	tests := []struct {
		name       string
		answer     string
		closeAfter bool
		want       Outcome
		status     int
		retryAfter time.Duration
		conns      int32 // connections two pushes take
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, Delivered, 200, 0, 1},
		{"empty body", "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", false, Delivered, 202, 0, 1},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", false, Delivered, 204, 0, 1},
		{"chunked", chunked("hello"), false, Delivered, 200, 0, 1},
		{"chunked past the drain limit", chunked(big), false, Delivered, 200, 0, 2},
		{"content-length past the drain limit", "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000), false, Delivered, 200, 0, 2},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false, Delivered, 200, 0, 2},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false, Delivered, 200, 0, 1},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, Delivered, 200, 0, 2},
		{"body to the end of the connection", "HTTP/1.1 200 OK\r\n\r\nuntil closed", true, Delivered, 200, 0, 2},
		{"interim answer first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, Delivered, 200, 0, 1},
		{"long header ignored", "HTTP/1.1 200 OK\r\nSet-Cookie: " + strings.Repeat("c", 10000) + "\r\nContent-Length: 0\r\n\r\n", false, Delivered, 200, 0, 1},
		{"lower-case headers", "HTTP/1.1 429 Too Many\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n", false, Retryable, 429, 7 * time.Second, 1},
		{"server closes after answering", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true, Delivered, 200, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, tt.answer, tt.closeAfter)
			c := NewClient(Options{AllowPrivate: true})
			t.Cleanup(c.CloseIdleConnections)
			for i := range 2 {
				if i == 1 && tt.closeAfter {
					<-srv.closed
				}
				res := c.Send(context.Background(), Request{ID: "msg_x", URL: srv.url, Body: []byte(`{}`), Now: time.Now()})
				if res.Outcome != tt.want || res.StatusCode != tt.status || res.RetryAfter != tt.retryAfter {
					t.Fatalf("push %d: Send = %+v, want %v status %d retry after %s", i+1, res, tt.want, tt.status, tt.retryAfter)
				}
			}
			if got := srv.conns.Load(); got != tt.conns {
				t.Fatalf("two pushes took %d connections, want %d", got, tt.conns)
			}
		})
	}
}

func TestSendRefusesMalformedAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
	}{
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"},
		{"status not a number", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"HTTP/2 status line", "HTTP/2 200 OK\r\n\r\n"},
		{"content-length not a number", "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n"},
		{"content-lengths disagree", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok"},
		{"unknown transfer-encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"header without a colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n"},
		{"endless interim answers", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 10)},
		{"closed before the status", ""},
		{"closed inside the head", "HTTP/1.1 200 OK\r\nContent-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, tt.answer, true)
			c := NewClient(Options{AllowPrivate: true})
			t.Cleanup(c.CloseIdleConnections)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := c.Send(ctx, Request{ID: "msg_x", URL: srv.url, Body: []byte(`{}`), Now: time.Now()})
			if res.Outcome != Retryable || res.StatusCode != 0 || res.Err == nil {
				t.Fatalf("Send = %+v, want retryable with no status", res)
			}
			if errors.Is(res.Err, context.DeadlineExceeded) {
				t.Fatalf("Send waited for the deadline: %v", res.Err)
			}
		})
	}
}

func TestSendReusesConnectionsUpToTheLimit(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := NewClient(Options{AllowPrivate: true, MaxPerHost: 3})
	t.Cleanup(c.CloseIdleConnections)

	const pushes = 12
	results := make(chan Result, pushes)
	for range pushes {
		go func() {
			results <- c.Send(context.Background(), Request{ID: "msg_x", URL: srv.URL, Body: []byte(`{}`), Now: time.Now()})
		}()
	}
	for range pushes {
		release <- struct{}{}
	}
	for range pushes {
		if res := <-results; res.Outcome != Delivered {
			t.Fatalf("Send = %+v", res)
		}
	}
	if got := conns.Load(); got > 3 {
		t.Fatalf("%d connections to one host, want at most 3", got)
	}
}

func TestSendOverTLSWithHTTP11ReusesTheConnection(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.ProtoMajor != 1 {
			t.Errorf("request over %s, TLS %v", r.Proto, r.TLS != nil)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := NewClient(Options{AllowPrivate: true, RootCAs: trusting(srv)})
	t.Cleanup(c.CloseIdleConnections)
	for range 5 {
		if res := c.Send(context.Background(), Request{ID: "msg_x", URL: srv.URL, Body: []byte(`{}`), Now: time.Now()}); res.Outcome != Delivered {
			t.Fatalf("Send = %+v", res)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Fatalf("5 pushes took %d connections, want 1", got)
	}
}

func TestSendRefusesInvalidHeaders(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)
	c := NewClient(Options{AllowPrivate: true})
	t.Cleanup(c.CloseIdleConnections)
	for _, h := range []map[string]string{
		{"X-Injected": "a\r\nX-Evil: 1"},
		{"Bad Name": "v"},
		{"": "v"},
	} {
		res := c.Send(context.Background(), Request{ID: "msg_x", URL: srv.url, Headers: h, Body: []byte(`{}`), Now: time.Now()})
		if res.Outcome != Permanent || res.Err == nil {
			t.Errorf("Send with headers %q = %+v, want permanent", h, res)
		}
	}
	if got := srv.conns.Load(); got != 0 {
		t.Fatalf("%d connections made for invalid requests", got)
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stop }))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(stop) }) // runs first: the handlers end, then the server closes
	// A TCP listener that never answers a TLS handshake.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { <-stop; _ = c.Close() }()
		}
	}()
	for _, u := range []string{hang.URL, "https://" + silent.Addr().String()} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			c := NewClient(Options{AllowPrivate: true})
			t.Cleanup(c.CloseIdleConnections)
			res := c.Send(context.Background(), Request{ID: "msg_x", URL: u, Body: []byte(`{}`), Now: time.Now(), Timeout: 100 * time.Millisecond})
			if res.Outcome != Retryable || !errors.Is(res.Err, context.DeadlineExceeded) {
				t.Fatalf("Send = %+v, want retryable past its deadline", res)
			}
		})
	}
}

// A push ends when its context does, with no deadline of its own: the HTTP/1.1 path's I/O is
// cut at once, and the connection is not kept.
func TestSendEndsWhenItsContextDoes(t *testing.T) {
	t.Parallel()
	got := make(chan struct{}, 1)
	closed := make(chan error, 1)
	srv := newRawTarget(t, 0, func(_ int, c net.Conn, req *http.Request) bool {
		_, _ = io.Copy(io.Discard, req.Body)
		got <- struct{}{}
		// No answer: the next read ends when the client closes the connection.
		_, err := c.Read(make([]byte, 1))
		closed <- err
		return false
	})
	c := NewClient(Options{AllowPrivate: true})
	t.Cleanup(c.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-got
		cancel()
	}()
	res := c.Send(ctx, Request{ID: "msg_x", URL: srv.url, Body: []byte(`{}`), Now: time.Now()})
	if res.Outcome != Retryable || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("Send = %+v, want retryable, canceled", res)
	}
	select {
	case err := <-closed:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the target's read ended with %v, want EOF", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the connection was still open 30 s after the push ended")
	}
}
