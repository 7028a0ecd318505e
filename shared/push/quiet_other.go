//go:build !unix

package push

import "net"

// quietCheck cannot look at a connection on this platform; the check of the answer's first
// byte (see guardConn) still refuses bytes that came before the request.
func quietCheck(net.Conn) func() bool { return func() bool { return true } }
