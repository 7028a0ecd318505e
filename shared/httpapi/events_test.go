package httpapi

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
)

// TestSampleEvents runs the API Gateway samples of events/ (what `sam local invoke` sends)
// through the handler, in order, on one store.
func TestSampleEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		file   string
		status int
		check  func(t *testing.T, body string)
	}{
		{"api-get.json", http.StatusNotFound, nil},
		{"api-post-invalid.json", http.StatusBadRequest, func(t *testing.T, body string) {
			var e ingest.ErrorBody
			_ = json.Unmarshal([]byte(body), &e)
			var paths []string
			for _, d := range e.Error.Details {
				paths = append(paths, d.Path)
			}
			if len(paths) != 3 || paths[0] != "priority" || paths[1] != "target.headers.Host" || paths[2] != "target.url" {
				t.Fatalf("problems at %v", paths)
			}
		}},
		{"api-post.json", http.StatusAccepted, nil},
		{"api-get.json", http.StatusOK, func(t *testing.T, body string) {
			var v View
			_ = json.Unmarshal([]byte(body), &v)
			if v.ID != message.IDForKey("order-42-shipped") || v.Status != message.Accepted {
				t.Fatalf("view = %s", body)
			}
		}},
		{"api-post-batch.json", http.StatusAccepted, func(t *testing.T, body string) {
			// The first message replays api-post.json's key, which answered already: replayed.
			var items ingest.Items
			_ = json.Unmarshal([]byte(body), &items)
			if len(items.Messages) != 2 || items.Messages[0].Error != nil || items.Messages[0].Replayed == nil || !*items.Messages[0].Replayed ||
				items.Messages[1].Status != message.Accepted || *items.Messages[1].Replayed {
				t.Fatalf("items = %s", body)
			}
		}},
	}
	for _, tt := range tests {
		data, err := os.ReadFile("../../events/" + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(data, &req); err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		resp, err := b.h.Handle(t.Context(), req)
		if err != nil || resp.StatusCode != tt.status {
			t.Fatalf("%s: %d %v %s, want %d", tt.file, resp.StatusCode, err, resp.Body, tt.status)
		}
		if tt.check != nil {
			tt.check(t, resp.Body)
		}
	}
}
