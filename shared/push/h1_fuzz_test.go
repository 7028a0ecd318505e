package push

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// Whatever bytes a target sends, reading its answer ends without a panic, reports a status or an
// error, and keeps the connection only after a whole final answer with nothing after it.
func FuzzReadAnswer(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: t\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"garbage\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(b), h1ReadBuffer)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		a, keep := readAnswer(br, resp)
		if (a.status == 0) == (a.err == nil) {
			t.Fatalf("answer %+v: want a status or an error", a)
		}
		if keep && (a.status < 200 || br.Buffered() != 0) {
			t.Fatalf("kept after %+v with %d bytes left", a, br.Buffered())
		}
	})
}
