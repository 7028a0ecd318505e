package metrics_test

import (
	"os"
	"time"

	"github.com/pushfn/pushfn/shared/metrics"
)

// A handler starts a Set for each invocation, counts as it goes, and flushes it at the end.
func Example() {
	w := metrics.NewWriter(os.Stdout, "DeliverFunction")
	s := w.Invocation()
	s.Add(metrics.BatchSize, 2)
	s.AddBy(metrics.Deliveries, metrics.DimOutcome, "delivered", 2)
	s.Observe(metrics.AttemptLatency, 12*time.Millisecond)
	s.Observe(metrics.AttemptLatency, 12*time.Millisecond)
	_ = s.Flush(time.UnixMilli(1767000000000))
	// Output:
	// {"AttemptLatency":{"Values":[12],"Counts":[2],"Min":12,"Max":12,"Sum":24,"Count":2},"BatchSize":2,"_aws":{"CloudWatchMetrics":[{"Namespace":"pushfn","Dimensions":[["service","function"]],"Metrics":[{"Name":"BatchSize","Unit":"Count"},{"Name":"AttemptLatency","Unit":"Milliseconds"}]}],"Timestamp":1767000000000},"function":"DeliverFunction","service":"pushfn"}
	// {"Deliveries":2,"_aws":{"CloudWatchMetrics":[{"Namespace":"pushfn","Dimensions":[["service","function","outcome"]],"Metrics":[{"Name":"Deliveries","Unit":"Count"}]}],"Timestamp":1767000000000},"function":"DeliverFunction","outcome":"delivered","service":"pushfn"}
}
