//go:build unix

package push

import (
	"errors"
	"net"
	"syscall"
)

// quietCheck returns a function reporting whether c is still open and has nothing to read: a
// peer that closed it, or sent anything unasked, makes it unfit for another request. The
// function is built once per connection (it is called for every reuse) and is not safe for
// concurrent use.
func quietCheck(c net.Conn) func() bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return func() bool { return true }
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() bool { return false }
	}
	var (
		b       [1]byte
		peekErr error
	)
	// Control, not Read: the peek must not wait, nor heed a deadline.
	peek := func(fd uintptr) {
		_, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}
	return func() bool {
		peekErr = nil
		err := rc.Control(peek)
		return err == nil && (errors.Is(peekErr, syscall.EAGAIN) || errors.Is(peekErr, syscall.EWOULDBLOCK))
	}
}
