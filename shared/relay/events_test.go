package relay

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/pushfn/pushfn/shared/message"
)

// TestSampleEvents runs the relay samples of events/ through the handler.
func TestSampleEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		keys []string
	}{
		{"eventbridge.json", []string{"6a7e8feb-b491-4cf7-a9f1-bf3703467718"}},
		{"sns.json", []string{"95df01b4-ee98-5cb9-9903-4c221d41eb5e/0", "95df01b4-ee98-5cb9-9903-4c221d41eb5e/1"}},
		{"invoke.json", []string{"invoke-example-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile("../../events/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			b := setup(t)
			resp, err := b.h.Handle(withRequestID(t.Context(), "req-sample"), json.RawMessage(data))
			if err != nil || resp.Error != nil || len(resp.Messages) != len(tt.keys) {
				t.Fatalf("= %+v, %v", resp, err)
			}
			for i, k := range tt.keys {
				if it := resp.Messages[i]; it.IdempotencyKey != k || it.ID != message.IDForKey(k) || it.Status != message.Accepted {
					t.Fatalf("item %d = %+v, want key %s", i, it, k)
				}
			}
			if n := len(b.prod.Envelopes()); n != len(tt.keys) {
				t.Fatalf("%d queued", n)
			}
		})
	}
}
