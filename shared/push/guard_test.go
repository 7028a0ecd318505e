package push

import (
	"errors"
	"net"
	"testing"
	"time"
)

// A request on a reused connection is written only once the connection's reader waits.
func TestGuardConnWritesOnceTheReaderWaits(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	t.Cleanup(func() { _ = server.Close() })
	g := newGuardConn(client)
	t.Cleanup(func() { _ = g.Close() })
	g.armed.Store(true)
	wrote := make(chan error, 1)
	go func() {
		_, err := g.Write([]byte("request"))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("Write returned (%v) before any Read waited", err)
	case <-time.After(50 * time.Millisecond): // a negative check: it only slows a failure
	}
	go func() { _, _ = g.Read(make([]byte, 16)) }()
	buf := make([]byte, 16)
	n, err := server.Read(buf)
	if err != nil || string(buf[:n]) != "request" {
		t.Fatalf("server read %q, %v", buf[:n], err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if g.writes.Load() != 1 {
		t.Fatalf("writes = %d", g.writes.Load())
	}
}

// Closing the connection releases a waiting request with nothing written.
func TestGuardConnCloseReleasesAWaitingWrite(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	t.Cleanup(func() { _ = server.Close() })
	g := newGuardConn(client)
	g.armed.Store(true)
	wrote := make(chan error, 1)
	go func() {
		n, err := g.Write([]byte("request"))
		if n != 0 {
			err = errors.New("bytes written")
		}
		wrote <- err
	}()
	_ = g.Close()
	if err := <-wrote; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
	if g.writes.Load() != 0 {
		t.Fatalf("writes = %d, want none", g.writes.Load())
	}
}

// An answer whose first byte was read before the request was written is refused, and the
// request counts as unsent.
func TestAttemptRefusesAnAnswerReadBeforeTheRequest(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	t.Cleanup(func() { _ = server.Close() })
	g := newGuardConn(client)
	go func() { _, _ = server.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) }()
	if _, err := g.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	a := newAttempt()
	a.guard, a.since = g, g.writes.Load()
	a.trace.GotFirstResponseByte()
	if !a.early.Load() || !a.unsent() {
		t.Fatalf("early %v, unsent %v; want both", a.early.Load(), a.unsent())
	}
	if _, err := g.Write([]byte("x")); err == nil {
		t.Fatal("the connection is still open")
	}
}
