package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/local/receiver"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// BenchmarkHandle measures one invocation delivering a batch of 1 KiB messages to a loopback
// receiver (warm connections after the first op); `pushfn bench deliver` measures the cold case
// against wrk.
func BenchmarkHandle(b *testing.B) {
	for _, tc := range []struct{ records, conc int }{{1000, 100}, {1000, 1000}} {
		b.Run(fmt.Sprintf("records=%d/conc=%d", tc.records, tc.conc), func(b *testing.B) {
			rc := &receiver.Receiver{}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			cfg := config.Defaults()
			cfg.MaxConcurrency, cfg.MaxPerHost, cfg.AllowHTTPTargets = tc.conc, tc.conc, true
			client := push.NewClient(push.Options{MaxPerHost: tc.conc, AllowPrivate: true, Keys: [][]byte{[]byte("bench key")}})
			defer client.CloseIdleConnections()
			payload := json.RawMessage(`{"d":"` + strings.Repeat("x", 1024-8) + `"}`)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				mem := &store.Memory{}
				now := time.Now()
				ev := events.SQSEvent{Records: make([]events.SQSMessage, tc.records)}
				for i := range ev.Records {
					id := message.NewID(now)
					if err := mem.Create(context.Background(), message.Record{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
						b.Fatal(err)
					}
					body, _ := json.Marshal(message.Envelope{ID: id, Target: message.Target{URL: srv.URL}, Payload: payload})
					ev.Records[i] = events.SQSMessage{MessageId: fmt.Sprint(i), Body: string(body)}
				}
				h := &Handler{Store: mem, Sender: client, Config: cfg}
				b.StartTimer()
				resp, err := h.Handle(context.Background(), ev)
				if err != nil || len(resp.BatchItemFailures) != 0 {
					b.Fatalf("%d failures, %v", len(resp.BatchItemFailures), err)
				}
			}
			b.ReportMetric(float64(b.N*tc.records)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
