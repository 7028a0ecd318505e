//go:build !unix

package push

import "net"

// alive cannot look at a connection on this platform; the check of the answer's first byte
// (see guardConn) still refuses bytes that came before the request.
func alive(net.Conn) bool { return true }
