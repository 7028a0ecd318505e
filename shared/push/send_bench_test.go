package push

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSend pushes 1 KiB payloads, signed, to a loopback server over kept-alive HTTP/1.1.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	c := NewClient(Options{AllowPrivate: true, Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}})
	b.Cleanup(c.CloseIdleConnections)
	r := Request{ID: "msg_06h0t8b6c9jkc38g130fp6wssr", URL: srv.URL + "/hook", Body: make([]byte, 1024), Now: time.Now(), Timeout: 10 * time.Second,
		Headers: map[string]string{"X-Tenant": "acme"}}
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Body)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := c.Send(context.Background(), r); res.Outcome != Delivered {
				b.Errorf("Send = %+v", res)
				return
			}
		}
	})
}
