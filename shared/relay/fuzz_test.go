package relay

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzHandle feeds arbitrary invocations to the relay: it never panics, refuses invalid input
// without an error (so it is not retried), and reports one item per message it queued.
func FuzzHandle(f *testing.F) {
	for _, name := range []string{"eventbridge.json", "sns.json", "invoke.json"} {
		data, err := os.ReadFile("../../events/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(okMessage))
	f.Add([]byte(`{"messages":[` + okMessage + `]}`))
	f.Add([]byte(`{"Records":[{"EventSource":"aws:sns","Sns":{"MessageId":"m","Message":"{}"}}]}`))
	f.Add([]byte(`{"detail-type":"x","detail":null,"id":"e"}`))
	f.Add([]byte(`{"endpoint_id":"ep_06h3230102tq4gpdzyxsvjwpec","payload":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := setup(t)
		resp, err := b.h.Handle(t.Context(), json.RawMessage(data))
		if err != nil && !errors.Is(err, ErrRetry) {
			t.Fatalf("error %v is neither nil nor ErrRetry", err)
		}
		queued := 0
		for _, it := range resp.Messages {
			if it.Error == nil {
				queued++
			}
		}
		if n := len(b.prod.Envelopes()); queued != n {
			t.Fatalf("%d items accepted, %d queued", queued, n)
		}
	})
}
