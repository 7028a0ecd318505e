package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/push"
)

func TestReceiver(t *testing.T) {
	t.Parallel()
	key, other := []byte("the key"), []byte("another key")
	tests := []struct {
		name       string
		rc         *Receiver
		signWith   [][]byte
		wantStatus []int // per push of the same id
		wantCounts Counts
		wantSigErr error
	}{
		{"plain 200", &Receiver{}, nil, []int{200, 200}, Counts{Received: 2, Bytes: 4, Distinct: 1}, nil},
		{"chosen status", &Receiver{Status: 410}, nil, []int{410}, Counts{Received: 1, Bytes: 2, Distinct: 1}, nil},
		{"signature ok", &Receiver{Keys: [][]byte{key}}, [][]byte{other, key}, []int{200}, Counts{Received: 1, Bytes: 2, SignatureOK: 1, Distinct: 1}, nil},
		{"signature bad", &Receiver{Keys: [][]byte{key}}, [][]byte{other}, []int{200}, Counts{Received: 1, Bytes: 2, SignatureBad: 1, Distinct: 1}, push.ErrBadSignature},
		{"unsigned", &Receiver{Keys: [][]byte{key}}, nil, []int{200}, Counts{Received: 1, Bytes: 2, SignatureBad: 1, Distinct: 1}, push.ErrNoSignature},
		{"fail first twice", &Receiver{FailFirst: 2}, nil, []int{503, 503, 200}, Counts{Received: 3, Bytes: 6, Distinct: 1}, nil},
		{"delay", &Receiver{Delay: 20 * time.Millisecond, FailFirst: 1, FailStatus: 500}, nil, []int{500, 200}, Counts{Received: 2, Bytes: 4, Distinct: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var pushes []Push
			tt.rc.OnPush = func(p Push) {
				mu.Lock()
				defer mu.Unlock()
				pushes = append(pushes, p)
			}
			srv := httptest.NewServer(tt.rc)
			t.Cleanup(srv.Close)
			client := push.NewClient(push.Options{AllowPrivate: true, Keys: tt.signWith})
			t.Cleanup(client.CloseIdleConnections)
			for i, want := range tt.wantStatus {
				res := client.Send(context.Background(), push.Request{ID: "msg_1", URL: srv.URL, Body: []byte("{}"), Now: time.Now()})
				if res.StatusCode != want {
					t.Fatalf("push %d: status %d, want %d", i, res.StatusCode, want)
				}
			}
			if got := tt.rc.Counts(); got != tt.wantCounts {
				t.Fatalf("Counts = %+v, want %+v", got, tt.wantCounts)
			}
			resp, err := http.Get(srv.URL + StatsPath)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var stats Counts
			if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || stats != tt.wantCounts {
				t.Fatalf("stats %+v (%v), want %+v", stats, err, tt.wantCounts)
			}
			mu.Lock()
			defer mu.Unlock()
			p := pushes[0]
			if p.ID != "msg_1" || p.Size != 2 || p.Signed != (len(tt.rc.Keys) > 0) || !errors.Is(p.Err, tt.wantSigErr) || (tt.wantSigErr == nil) != (p.Err == nil) {
				t.Fatalf("push %+v, want signature error %v", p, tt.wantSigErr)
			}
		})
	}
}
