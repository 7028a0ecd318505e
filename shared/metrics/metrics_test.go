package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

var at = time.UnixMilli(1_767_000_000_000)

func TestFlush(t *testing.T) {
	t.Parallel()
	base := map[string]string{metrics.DimService: metrics.Service, metrics.DimFunction: "DeliverFunction"}
	tests := []struct {
		name   string
		record func(s *metrics.Set)
		lines  int
		want   map[string]float64 // metric name (with "outcome=x/" or "code=x/" for a kept-by value) to its sum
	}{
		{name: "nothing recorded, nothing written", record: func(*metrics.Set) {}, lines: 0},
		{name: "a declared count is written with 0", record: func(s *metrics.Set) { s.Add(metrics.LeaseConflicts, 0) },
			lines: 1, want: map[string]float64{metrics.LeaseConflicts: 0}},
		{name: "counts add up", record: func(s *metrics.Set) {
			s.Add(metrics.BatchSize, 10)
			s.Add(metrics.RecordsNotStarted, 2)
			s.Add(metrics.RecordsNotStarted, 1)
		}, lines: 1, want: map[string]float64{metrics.BatchSize: 10, metrics.RecordsNotStarted: 3}},
		{name: "one document a value of the outcome", record: func(s *metrics.Set) {
			s.Add(metrics.BatchSize, 4)
			s.AddBy(metrics.Deliveries, metrics.DimOutcome, "delivered", 1)
			s.AddBy(metrics.Deliveries, metrics.DimOutcome, "delivered", 1)
			s.AddBy(metrics.Deliveries, metrics.DimOutcome, "retrying", 1)
			s.AddBy(metrics.Deliveries, metrics.DimOutcome, "failed", 1)
		}, lines: 4, want: map[string]float64{metrics.BatchSize: 4, "outcome=delivered/Deliveries": 2,
			"outcome=retrying/Deliveries": 1, "outcome=failed/Deliveries": 1}},
		{name: "kept by value only: no base document", record: func(s *metrics.Set) {
			s.AddBy(metrics.MessagesRefused, metrics.DimCode, "validation_failed", 1)
		}, lines: 1, want: map[string]float64{"code=validation_failed/MessagesRefused": 1}},
		{name: "latency in the value/count form", record: func(s *metrics.Set) {
			s.Observe(metrics.AttemptLatency, 3*time.Millisecond)
			s.Observe(metrics.AttemptLatency, 3*time.Millisecond+200*time.Microsecond)
			s.Observe(metrics.AttemptLatency, 250*time.Millisecond)
		}, lines: 1, want: map[string]float64{metrics.AttemptLatency: 256.2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			s := metrics.NewWriter(&out, "DeliverFunction").Invocation()
			tt.record(s)
			if err := s.Flush(at); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out.String(), "\n"); n != tt.lines {
				t.Fatalf("%d lines, want %d:\n%s", n, tt.lines, out.String())
			}
			docs := metricstest.Documents(t, out.String())
			got := map[string]float64{}
			for _, d := range docs {
				if d.Timestamp != at.UnixMilli() {
					t.Errorf("Timestamp %d, want %d", d.Timestamp, at.UnixMilli())
				}
				for k, v := range base {
					if d.Dimensions[k] != v {
						t.Errorf("dimension %s is %q, want %q", k, d.Dimensions[k], v)
					}
				}
				prefix := ""
				for _, dim := range []string{metrics.DimOutcome, metrics.DimCode} {
					if v, ok := d.Dimensions[dim]; ok {
						prefix = dim + "=" + v + "/"
					}
				}
				for name, v := range d.Values {
					got[prefix+name] += v
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("metrics %v, want %v", got, tt.want)
			}
			for k, want := range tt.want {
				if g, ok := got[k]; !ok || g < want-1e-9 || g > want+1e-9 {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, want)
				}
			}
		})
	}
}

func TestObserveKeepsAtMostMaxValues(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := metrics.NewWriter(&out, "f").Invocation()
	r := rand.New(rand.NewPCG(1, 2))
	var sum time.Duration
	const n = 10_000
	for range n {
		d := time.Duration(r.Int64N(int64(60 * time.Second)))
		if r.IntN(2) == 0 {
			d = time.Duration(r.Int64N(int64(time.Second)))
		}
		sum += d
		s.Observe(metrics.AttemptLatency, d)
	}
	if err := s.Flush(at); err != nil {
		t.Fatal(err)
	}
	docs := metricstest.Documents(t, out.String())
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	if c := docs[0].Counts[metrics.AttemptLatency]; c != n {
		t.Errorf("the counts add up to %v, want %d", c, n)
	}
	want := float64(sum) / float64(time.Millisecond)
	if got := docs[0].Values[metrics.AttemptLatency]; got < want*0.999999 || got > want*1.000001 {
		t.Errorf("Sum %v, want %v", got, want)
	}
	if !strings.Contains(out.String(), `"Values":[`) {
		t.Errorf("no value/count form in %s", out.String())
	}
}

// The rounding keeps percentiles close: the median of the values written is within 5 % of the
// median observed.
func TestObserveRoundsWithinFivePercent(t *testing.T) {
	t.Parallel()
	tests := []time.Duration{0, 400 * time.Microsecond, 7 * time.Millisecond, 99 * time.Millisecond, 155 * time.Millisecond,
		999 * time.Millisecond, 4321 * time.Millisecond, 29 * time.Second}
	for _, d := range tests {
		var out bytes.Buffer
		s := metrics.NewWriter(&out, "f").Invocation()
		s.Observe(metrics.AttemptLatency, d)
		if err := s.Flush(at); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			AttemptLatency struct{ Values []float64 }
		}
		decode(t, out.Bytes(), &doc)
		ms := float64(d) / float64(time.Millisecond)
		if v := doc.AttemptLatency.Values; len(v) != 1 || v[0] < ms*0.95-0.5 || v[0] > ms*1.05+0.5 {
			t.Errorf("%v written as %v", d, v)
		}
	}
}

func TestSetIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := metrics.NewWriter(&out, "f").Invocation()
	const workers, each = 16, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				s.Add(metrics.BatchSize, 1)
				s.AddBy(metrics.Deliveries, metrics.DimOutcome, []string{"delivered", "failed"}[i%2], 1)
				s.Observe(metrics.AttemptLatency, time.Duration(i)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	if err := s.Flush(at); err != nil {
		t.Fatal(err)
	}
	docs := metricstest.Documents(t, out.String())
	if got := metricstest.Sum(docs, metrics.BatchSize, nil); got != workers*each {
		t.Errorf("BatchSize %v, want %d", got, workers*each)
	}
	for _, o := range []string{"delivered", "failed"} {
		if got := metricstest.Sum(docs, metrics.Deliveries, map[string]string{metrics.DimOutcome: o}); got != workers*each/2 {
			t.Errorf("Deliveries %s: %v, want %d", o, got, workers*each/2)
		}
	}
}

// Invocations flushing at once through one Writer write whole lines.
func TestWriterKeepsDocumentsWhole(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := metrics.NewWriter(&out, "f")
	const invocations = 20
	var wg sync.WaitGroup
	for range invocations {
		wg.Go(func() {
			s := w.Invocation()
			s.Add(metrics.MessagesAccepted, 1)
			s.AddBy(metrics.MessagesRefused, metrics.DimCode, "invalid_json", 1)
			if err := s.Flush(time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	docs := metricstest.Documents(t, out.String())
	if len(docs) != 2*invocations {
		t.Errorf("%d documents, want %d", len(docs), 2*invocations)
	}
}

// Tallies are properties of the base document, never metrics or dimensions, and only written with
// a metric to carry them.
func TestTally(t *testing.T) {
	t.Parallel()
	type tallies = map[string]map[string]map[string]float64
	tests := []struct {
		name   string
		record func(s *metrics.Set)
		want   tallies // the properties of the base document; nil: no document
	}{
		{name: "no metric, no document", record: func(s *metrics.Set) {
			s.Tally(metrics.PropTargetHosts, "a.example", "delivered", 1)
		}},
		{name: "counts by key and outcome", record: func(s *metrics.Set) {
			s.Add(metrics.BatchSize, 4)
			s.Tally(metrics.PropTargetHosts, "a.example", "delivered", 1)
			s.Tally(metrics.PropTargetHosts, "a.example", "delivered", 1)
			s.Tally(metrics.PropTargetHosts, "b.example:8443", "failed", 1)
			s.Tally(metrics.PropEndpoints, "ep_1", "retrying", 1)
			s.AddBy(metrics.Deliveries, metrics.DimOutcome, "delivered", 2)
		}, want: tallies{
			metrics.PropTargetHosts: {"a.example": {"delivered": 2}, "b.example:8443": {"failed": 1}},
			metrics.PropEndpoints:   {"ep_1": {"retrying": 1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			s := metrics.NewWriter(&out, "DeliverFunction").Invocation()
			tt.record(s)
			if err := s.Flush(at); err != nil {
				t.Fatal(err)
			}
			docs := metricstest.Documents(t, out.String())
			if tt.want == nil {
				if len(docs) != 0 {
					t.Fatalf("%d documents, want none:\n%s", len(docs), out.String())
				}
				return
			}
			got := tallies{}
			for l := range strings.Lines(out.String()) {
				var root map[string]json.RawMessage
				decode(t, []byte(l), &root)
				for _, p := range []string{metrics.PropTargetHosts, metrics.PropEndpoints} {
					if raw, ok := root[p]; ok {
						if _, dup := got[p]; dup {
							t.Errorf("%s in two documents", p)
						}
						var v map[string]map[string]float64
						decode(t, raw, &v)
						got[p] = v
					}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("properties %v, want %v", got, tt.want)
			}
			for _, d := range docs {
				for _, p := range []string{metrics.PropTargetHosts, metrics.PropEndpoints} {
					if _, ok := d.Values[p]; ok {
						t.Errorf("%s declared as a metric", p)
					}
					if _, ok := d.Dimensions[p]; ok {
						t.Errorf("%s declared as a dimension", p)
					}
				}
			}
		})
	}
}

func TestNilRecordsNothing(t *testing.T) {
	t.Parallel()
	var w *metrics.Writer
	s := w.Invocation()
	s.Add(metrics.BatchSize, 1)
	s.AddBy(metrics.Deliveries, metrics.DimOutcome, "delivered", 1)
	s.Observe(metrics.AttemptLatency, time.Millisecond)
	s.Tally(metrics.PropEndpoints, "ep_1", "delivered", 1)
	if err := s.Flush(at); err != nil {
		t.Errorf("Flush of a nil Set: %v", err)
	}
}

var errBroken = errors.New("broken pipe")

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errBroken }

func TestFlushReportsTheWriteError(t *testing.T) {
	t.Parallel()
	s := metrics.NewWriter(brokenWriter{}, "f").Invocation()
	s.Add(metrics.BatchSize, 1)
	if err := s.Flush(at); !errors.Is(err, errBroken) {
		t.Errorf("Flush: %v, want %v", err, errBroken)
	}
}

// Whatever is recorded, every document written passes the checks of the specification.
func FuzzFlush(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 200, 255})
	f.Add(bytes.Repeat([]byte{2, 250, 7}, 400))
	names := []string{metrics.BatchSize, metrics.LeaseConflicts, metrics.RecordsNotStarted, metrics.MessagesAccepted}
	values := []string{"delivered", "retrying", "failed", "expired", "validation_failed"}
	f.Fuzz(func(t *testing.T, ops []byte) {
		var out bytes.Buffer
		s := metrics.NewWriter(&out, "Fn").Invocation()
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], int(ops[i+1])
			switch op % 4 {
			case 0:
				s.Add(names[arg%len(names)], float64(arg))
			case 1:
				s.AddBy(metrics.Deliveries, metrics.DimOutcome, values[arg%len(values)], 1)
			case 2:
				s.Observe(metrics.AttemptLatency, time.Duration(arg*arg*arg)*time.Microsecond*int64Dur(op))
			case 3:
				s.Tally(metrics.PropTargetHosts, fmt.Sprintf("h%d.example", arg%7), values[arg%len(values)], 1)
			}
		}
		if err := s.Flush(at); err != nil {
			t.Fatal(err)
		}
		metricstest.Documents(t, out.String())
	})
}

func int64Dur(b byte) time.Duration { return time.Duration(b%16) + 1 }

// A Set put in a context is the one FromContext returns; a context without one gives nil, which
// records nothing.
func TestContextCarriesTheSet(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := metrics.NewWriter(&out, "f").Invocation()
	ctx := metrics.NewContext(context.Background(), s)
	if got := metrics.FromContext(ctx); got != s {
		t.Errorf("FromContext returned %p, want the Set %p", got, s)
	}
	none := metrics.FromContext(context.Background())
	if none != nil {
		t.Fatalf("FromContext of a bare context = %p, want nil", none)
	}
	none.AddBy(metrics.AWSRequests, metrics.DimOperation, "SQS.SendMessageBatch", 1)
	if err := none.Flush(time.Now()); err != nil || out.Len() != 0 {
		t.Errorf("a nil Set wrote %q (%v)", out.String(), err)
	}
}
