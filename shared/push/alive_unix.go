//go:build unix

package push

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether a connection is still open and has nothing to read: a peer that closed
// it, or sent anything unasked, makes it unfit for another request.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// Control, not Read: the peek must not wait, nor heed the deadline of the last request.
	var peekErr error
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		_, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return err == nil && (errors.Is(peekErr, syscall.EAGAIN) || errors.Is(peekErr, syscall.EWOULDBLOCK))
}
