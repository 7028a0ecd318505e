package push

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSendSignsWithTheRequestsKeys checks that a request's own keys replace the client's, on
// both of the client's paths (HTTP/1.1 for small bodies, net/http for large ones), and that a
// request without keys keeps the client's.
func TestSendSignsWithTheRequestsKeys(t *testing.T) {
	t.Parallel()
	key := specKey(t)
	clientKey := bytes.Repeat([]byte{7}, 32)
	previous := bytes.Repeat([]byte{9}, 32)
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = r.Body.Read(make([]byte, 1))
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	c := NewClient(Options{AllowPrivate: true, Keys: [][]byte{clientKey}})
	t.Cleanup(c.CloseIdleConnections)
	now := time.Unix(specTimestamp, 0)
	large := `{"test": "` + strings.Repeat("a", 20<<10) + `"}`
	tests := []struct {
		name string
		keys [][]byte
		body string
		want string // the Webhook-Signature header; "" for none
	}{
		{"the client's keys", nil, specBody, Sign([][]byte{clientKey}, specID, specTimestamp, []byte(specBody))},
		{"the request's key", [][]byte{key}, specBody, specSignature},
		{"the request's two keys, current first", [][]byte{key, previous}, specBody, specSignature + " " + Sign([][]byte{previous}, specID, specTimestamp, []byte(specBody))},
		{"the request's keys, large body", [][]byte{key}, large, Sign([][]byte{key}, specID, specTimestamp, []byte(large))},
		{"no keys at all", [][]byte{}, specBody, ""},
	}
	for _, tt := range tests {
		res := c.Send(context.Background(), Request{ID: specID, URL: srv.URL + "/push", Body: []byte(tt.body), Now: now, Keys: tt.keys})
		if res.Outcome != Delivered {
			t.Fatalf("%s: Send = %+v", tt.name, res)
		}
		h := <-got
		if sig := h.Values(HeaderSignature); tt.want == "" && len(sig) != 0 || tt.want != "" && (len(sig) != 1 || sig[0] != tt.want) {
			t.Errorf("%s: Webhook-Signature %q, want %q", tt.name, sig, tt.want)
		}
	}
}
