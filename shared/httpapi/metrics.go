package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/metrics"
)

// countOne counts in m what the single-message route answered, resp, and returns it: accepted
// (202), replayed (200), or refused under the code of its error.
func countOne(m *metrics.Set, resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	switch resp.StatusCode {
	case http.StatusAccepted:
		declare(m)
		m.Add(metrics.MessagesAccepted, 1)
	case http.StatusOK:
		declare(m)
		m.Add(metrics.MessagesReplayed, 1)
	default:
		countRefused(m, resp, 1)
	}
	return resp
}

// countRefused counts in m the n messages of a request refused as a whole, resp, under the code
// of its error, and returns resp. A body that could not be read or is not valid counts one: its
// messages are not known.
func countRefused(m *metrics.Set, resp events.APIGatewayV2HTTPResponse, n int) events.APIGatewayV2HTTPResponse {
	declare(m)
	var body ingest.ErrorBody
	_ = json.Unmarshal([]byte(resp.Body), &body) // the route's own error envelope
	m.AddBy(metrics.MessagesRefused, metrics.DimCode, cmp.Or(body.Error.Code, ingest.CodeInternal), float64(n))
	return resp
}

// countResults counts in m each message of a batch: accepted, replayed, or refused under its
// error's code.
func countResults(m *metrics.Set, rs []ingest.Result) {
	declare(m)
	for _, r := range rs {
		switch {
		case r.Err != nil:
			m.AddBy(metrics.MessagesRefused, metrics.DimCode, ingest.ErrorOf(r.Err).Code, 1)
		case r.Replayed:
			m.Add(metrics.MessagesReplayed, 1)
		default:
			m.Add(metrics.MessagesAccepted, 1)
		}
	}
}

// declare has m write MessagesAccepted and MessagesReplayed even when 0, so that their sums
// count every request.
func declare(m *metrics.Set) {
	m.Add(metrics.MessagesAccepted, 0)
	m.Add(metrics.MessagesReplayed, 0)
}

// flushMetrics writes the request's metrics.
func (h *Handler) flushMetrics(ctx context.Context, m *metrics.Set) {
	if err := m.Flush(h.now()); err != nil {
		h.logger().ErrorContext(ctx, "metrics not written", "error", err.Error())
	}
}
