package deliver

import (
	"context"
	"strings"

	"github.com/pushfn/pushfn/shared/metrics"
)

// writeMetrics writes the invocation's metrics m, once, after its records have their verdicts:
// the batch's size, the deliveries whose result was recorded by outcome, each attempt's
// duration, the records not started and the lease conflicts, and, as properties, the
// deliveries by outcome for each target host and each endpoint. A fan-out's expansion and a
// recovery are no delivery: their records are not counted as Deliveries.
func (h *Handler) writeMetrics(ctx context.Context, m *metrics.Set, jobs []job) {
	if m == nil {
		return
	}
	m.Add(metrics.BatchSize, float64(len(jobs)))
	m.Add(metrics.RecordsNotStarted, 0)
	m.Add(metrics.LeaseConflicts, 0)
	for i := range jobs {
		j := &jobs[i]
		if j.notStarted {
			m.Add(metrics.RecordsNotStarted, 1)
		}
		if j.leaseConflict {
			m.Add(metrics.LeaseConflicts, 1)
		}
		if j.sent {
			m.Observe(metrics.AttemptLatency, j.took)
		}
		if j.outcome != "" && j.host != fanoutKey && j.host != recoveryKey {
			m.AddBy(metrics.Deliveries, metrics.DimOutcome, string(j.outcome), 1)
			if j.url != nil {
				m.Tally(metrics.PropTargetHosts, strings.ToLower(j.url.Host), string(j.outcome), 1)
			}
			if j.env.EndpointID != "" {
				m.Tally(metrics.PropEndpoints, j.env.EndpointID, string(j.outcome), 1)
			}
		}
	}
	if err := m.Flush(h.now()); err != nil {
		h.log().ErrorContext(ctx, "metrics not written", "error", err.Error())
	}
}
