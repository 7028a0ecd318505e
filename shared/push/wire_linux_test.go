package push

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// corked writes what write writes on c, a TLS connection, in one TCP segment: each Write makes a
// TLS record of its own, and the client receives them together.
func corked(c net.Conn, write func() error) error {
	raw := c.(*tls.Conn).NetConn().(*net.TCPConn)
	rc, err := raw.SyscallConn()
	if err != nil {
		return err
	}
	cork := func(on int) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, on) }); err != nil {
			return err
		}
		return serr
	}
	if err := cork(1); err != nil {
		return err
	}
	werr := write()
	if err := cork(0); err != nil {
		return err
	}
	return werr
}

// Over TLS, an extra answer may come in a record of its own that the client has received, but
// not decrypted, when it has read the first answer: it is still not the next push's answer.
// Without the check of the TLS layer before a connection is reused, the second push of the
// first round got the extra 200.
func TestSendNeverTakesAnExtraTLSRecordForTheNextAnswer(t *testing.T) {
	t.Parallel()
	srv, roots := newRawTLSTarget(t, func(_ int, c net.Conn, req *http.Request) bool {
		if req.Header.Get(HeaderID) != "msg_first" {
			_, err := io.WriteString(c, answer503)
			return err == nil
		}
		err := corked(c, func() error {
			if _, err := io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"); err != nil {
				return err
			}
			_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			return err
		})
		return err == nil
	})
	c := NewClient(Options{AllowPrivate: true, MaxPerHost: 1, RootCAs: roots})
	t.Cleanup(c.CloseIdleConnections)
	for range 10 {
		first := push(c, srv.url, "msg_first", []byte(`{}`), 10*time.Second)
		second := push(c, srv.url, "msg_second", []byte(`{}`), 10*time.Second)
		if first.StatusCode != 202 || second.StatusCode != 503 || second.Outcome != Retryable {
			t.Fatalf("first push %+v, second %+v; want 202, then the second's own 503", first, second)
		}
	}
}
