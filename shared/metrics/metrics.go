// Package metrics counts what an invocation did and writes it, at the invocation's end, to the
// function's stdout in CloudWatch Embedded Metric Format (EMF), so that CloudWatch Logs turns the
// lines into metrics without an API call.
//
// Ships in all three functions.
package metrics

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric pushfn writes.
const Namespace = "pushfn"

// Service is the value of the service dimension, as the logs name the service.
const Service = "pushfn"

// Dimensions: every metric has service and function; a count kept by a value (AddBy) has that
// value's dimension too.
const (
	DimService  = "service"
	DimFunction = "function"
	DimOutcome  = "outcome" // Deliveries: delivered, retrying, failed, expired
	DimCode     = "code"    // MessagesRefused: the error code of the answer
	// DimOperation is the AWS service and operation of AWSRequests, as "DynamoDB.PutItem": a
	// fixed set, the calls pushfn's code makes.
	DimOperation = "operation"
)

// Metrics of every function.
const (
	// AWSRequests counts the requests the invocation sent to AWS by operation, each attempt of a
	// call the SDK retried counted: what AWS bills.
	AWSRequests = "AWSRequests"
)

// Metrics of the deliver function.
const (
	Deliveries        = "Deliveries"        // records whose outcome was recorded, by outcome
	AttemptLatency    = "AttemptLatency"    // the duration of each attempt made, in milliseconds
	RecordsNotStarted = "RecordsNotStarted" // records handed back unstarted at the deadline
	LeaseConflicts    = "LeaseConflicts"    // records leased by another worker, or whose lease was lost
	BatchSize         = "BatchSize"         // records in the invocation's batch
)

// Metrics of the api and relay functions.
const (
	MessagesAccepted = "MessagesAccepted" // messages accepted and queued
	MessagesReplayed = "MessagesReplayed" // messages answered from an earlier request with the same idempotency key
	MessagesRefused  = "MessagesRefused"  // messages (or requests that could not be read) refused, by code
)

// Properties of the deliver function's document: outcome counts by target host and by endpoint,
// which are never dimensions (each value would be a metric of its own). CloudWatch keeps them in
// the log line, where Logs Insights can query them; a local run's status page reads them.
const (
	PropTargetHosts = "target_hosts" // {"host[:port]": {"outcome": n}}
	PropEndpoints   = "endpoints"    // {"ep_...": {"outcome": n}}
)

// Units pushfn writes, from the set EMF allows.
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
)

// MaxValues is the most distinct values EMF takes for one metric in one document.
const MaxValues = 100

// Writer writes the documents of invocations to one stream, the one the function logs to. It is
// safe for concurrent use: the documents of invocations running at once do not interleave.
type Writer struct {
	mu       sync.Mutex
	w        io.Writer
	function string
}

// NewWriter returns a Writer to w for the function named function, the value of the function
// dimension (lambdacontext.FunctionName in a function).
func NewWriter(w io.Writer, function string) *Writer {
	return &Writer{w: w, function: function}
}

// Invocation returns an empty Set for one invocation, written to w by its Flush. A nil Writer
// returns a nil Set, which records nothing.
func (w *Writer) Invocation() *Set {
	if w == nil {
		return nil
	}
	return &Set{w: w, counts: map[string]float64{}, by: map[byKey]float64{}, dists: map[string]*dist{}}
}

// Set is what one invocation counted. It is safe for concurrent use by the invocation's
// goroutines; a nil Set records nothing and writes nothing.
type Set struct {
	w      *Writer
	mu     sync.Mutex
	counts map[string]float64 // under service and function
	by     map[byKey]float64  // under service, function and one more dimension
	dists  map[string]*dist   // distributions in milliseconds
	// tallies are properties of the base document: property, key, outcome: count.
	tallies map[string]map[string]map[string]float64
}

// byKey is a count kept under one more dimension's value.
type byKey struct{ name, dim, value string }

// setKey is the context key of an invocation's Set.
type setKey struct{}

// NewContext returns ctx carrying s, so that code deep in the invocation's calls (the AWS SDK's
// middleware) counts into it.
func NewContext(ctx context.Context, s *Set) context.Context {
	return context.WithValue(ctx, setKey{}, s)
}

// FromContext returns the Set ctx carries, or nil (which records nothing).
func FromContext(ctx context.Context) *Set {
	s, _ := ctx.Value(setKey{}).(*Set)
	return s
}

// Add adds n to the count name. Adding 0 declares it: the document carries it with 0.
func (s *Set) Add(name string, n float64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.counts[name] += n
	s.mu.Unlock()
}

// AddBy adds n to the count name under dimension dim's value: value must come from a small, fixed
// set (an outcome, an error code), as every distinct value is a metric of its own.
func (s *Set) AddBy(name, dim, value string, n float64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.by[byKey{name, dim, value}] += n
	s.mu.Unlock()
}

// Tally adds n to the count of outcome under key in the property named property, a JSON object
// of the base document ({key: {outcome: n}}) that is no metric: for values of many kinds, such
// as target hosts, that must never be dimensions. Properties are written only with a count or a
// distribution, as a document declares at least one metric.
func (s *Set) Tally(property, key, outcome string, n float64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tallies == nil {
		s.tallies = map[string]map[string]map[string]float64{}
	}
	byKey := s.tallies[property]
	if byKey == nil {
		byKey = map[string]map[string]float64{}
		s.tallies[property] = byKey
	}
	if byKey[key] == nil {
		byKey[key] = map[string]float64{}
	}
	byKey[key][outcome] += n
}

// Observe records d in the distribution name, in milliseconds.
func (s *Set) Observe(name string, d time.Duration) {
	if s == nil {
		return
	}
	ms := float64(d) / float64(time.Millisecond)
	s.mu.Lock()
	dd := s.dists[name]
	if dd == nil {
		dd = &dist{buckets: map[float64]float64{}, min: ms, max: ms}
		s.dists[name] = dd
	}
	dd.add(ms)
	s.mu.Unlock()
}

// Flush writes the Set's documents, one JSON line each, stamped with now: one with the counts
// and distributions under service and function, and one for each value of a count kept by value
// (a document holds one value per dimension); the tallies are properties of the first. A Set
// that recorded nothing writes nothing.
func (s *Set) Flush(now time.Time) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	docs := s.documents(now.UnixMilli())
	s.mu.Unlock()
	if len(docs) == 0 {
		return nil
	}
	lines := make([][]byte, len(docs))
	for i, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("encode metrics document: %w", err)
		}
		lines[i] = append(b, '\n')
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	for _, l := range lines {
		// One write a line: a line under the pipe's atomic size does not mix with a log line
		// another goroutine writes at the same time.
		if _, err := s.w.w.Write(l); err != nil {
			return fmt.Errorf("write metrics document: %w", err)
		}
	}
	return nil
}

// documents builds the Set's documents; s.mu is held.
func (s *Set) documents(ts int64) []map[string]any {
	var docs []map[string]any
	if len(s.counts)+len(s.dists) > 0 {
		d, defs := s.w.root(), []definition{}
		for _, name := range slices.Sorted(maps.Keys(s.counts)) {
			d[name] = s.counts[name]
			defs = append(defs, definition{Name: name, Unit: UnitCount})
		}
		for _, name := range slices.Sorted(maps.Keys(s.dists)) {
			d[name] = s.dists[name].value()
			defs = append(defs, definition{Name: name, Unit: UnitMilliseconds})
		}
		for name, byKey := range s.tallies {
			cp := make(map[string]map[string]float64, len(byKey)) // marshalled after s.mu is released
			for k, outcomes := range byKey {
				cp[k] = maps.Clone(outcomes)
			}
			d[name] = cp
		}
		docs = append(docs, s.w.declare(d, ts, defs, nil))
	}
	// One document per dimension and value, holding every count kept under it.
	type dimValue struct{ dim, value string }
	groups := map[dimValue][]string{}
	for k := range s.by {
		dv := dimValue{k.dim, k.value}
		groups[dv] = append(groups[dv], k.name)
	}
	keys := slices.SortedFunc(maps.Keys(groups), func(a, b dimValue) int {
		return cmp.Or(cmp.Compare(a.dim, b.dim), cmp.Compare(a.value, b.value))
	})
	for _, dv := range keys {
		d, defs := s.w.root(), []definition{}
		d[dv.dim] = dv.value
		names := groups[dv]
		slices.Sort(names)
		for _, name := range names {
			d[name] = s.by[byKey{name, dv.dim, dv.value}]
			defs = append(defs, definition{Name: name, Unit: UnitCount})
		}
		docs = append(docs, s.w.declare(d, ts, defs, []string{dv.dim}))
	}
	return docs
}

// definition is an EMF MetricDefinition.
type definition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// directive is an EMF MetricDirective.
type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

// root is a document's root with its dimension values.
func (w *Writer) root() map[string]any {
	return map[string]any{DimService: Service, DimFunction: w.function}
}

// declare adds to d the metadata declaring defs under service, function and extra.
func (w *Writer) declare(d map[string]any, ts int64, defs []definition, extra []string) map[string]any {
	dims := append([]string{DimService, DimFunction}, extra...)
	d["_aws"] = map[string]any{
		"Timestamp":         ts,
		"CloudWatchMetrics": []directive{{Namespace: Namespace, Dimensions: [][]string{dims}, Metrics: defs}},
	}
	return d
}

// dist is a distribution of values in milliseconds, kept as counts of rounded values so that
// CloudWatch computes its percentiles from them.
type dist struct {
	buckets          map[float64]float64 // rounded value: count
	min, max, sum, n float64
}

func (d *dist) add(ms float64) {
	d.buckets[bucket(ms)]++
	d.min, d.max = min(d.min, ms), max(d.max, ms)
	d.sum += ms
	d.n++
}

// bucket rounds ms to 1 ms below 100 ms, 10 ms below 1 s, 100 ms below 10 s and 1 s above: within
// 5 % of the value above 100 ms, and a few hundred distinct values up to a minute, which value
// merges down to MaxValues when a document would have more.
func bucket(ms float64) float64 {
	step := 1000.0
	switch {
	case ms < 100:
		step = 1
	case ms < 1000:
		step = 10
	case ms < 10000:
		step = 100
	}
	return math.Round(ms/step) * step
}

// distValue is the EMF value/count form of a distribution, with its exact statistics.
type distValue struct {
	Values []float64 `json:"Values"`
	Counts []float64 `json:"Counts"`
	Min    float64   `json:"Min"`
	Max    float64   `json:"Max"`
	Sum    float64   `json:"Sum"`
	Count  float64   `json:"Count"`
}

// value returns d in the EMF value/count form, its values merged down to MaxValues.
func (d *dist) value() distValue {
	values := slices.Sorted(maps.Keys(d.buckets))
	counts := make([]float64, len(values))
	for i, v := range values {
		counts[i] = d.buckets[v]
	}
	values, counts = merge(values, counts, MaxValues)
	return distValue{Values: values, Counts: counts, Min: d.min, Max: d.max, Sum: d.sum, Count: d.n}
}

// merge joins neighbouring values of the sorted values, the two closest relative to their size
// first, until at most limit are left; a joined value is the count-weighted mean of the two.
func merge(values, counts []float64, limit int) ([]float64, []float64) {
	for len(values) > limit {
		best, gap := 0, math.Inf(1)
		for i := 0; i+1 < len(values); i++ {
			if g := (values[i+1] - values[i]) / max(values[i+1], 1); g < gap {
				best, gap = i, g
			}
		}
		c := counts[best] + counts[best+1]
		values[best] = (values[best]*counts[best] + values[best+1]*counts[best+1]) / c
		counts[best] = c
		values = slices.Delete(values, best+1, best+2)
		counts = slices.Delete(counts, best+1, best+2)
	}
	return values, counts
}
