package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/metrics"
)

// errNotDocument says a line is no metrics document: the Board skips it.
var errNotDocument = errors.New("not a metrics document")

// document is what the Board reads of one metrics document: its time, its function, its outcome
// or code dimension, and the values of the metrics and properties pushfn writes.
type document struct {
	at       time.Time
	function string
	outcome  string // the outcome dimension, on a document of Deliveries
	code     string // the code dimension, on a document of MessagesRefused
	counts   map[string]float64
	latency  *latencyValue
	hosts    map[string]map[string]float64
	eps      map[string]map[string]float64
}

// latencyValue is AttemptLatency in its value/count form.
type latencyValue struct {
	Values []float64 `json:"Values"`
	Counts []float64 `json:"Counts"`
	Min    float64   `json:"Min"`
	Max    float64   `json:"Max"`
	Sum    float64   `json:"Sum"`
	Count  float64   `json:"Count"`
}

// counted are the metrics of pushfn the Board adds up; a document's other members are skipped.
var counted = []string{
	metrics.Deliveries, metrics.BatchSize, metrics.RecordsNotStarted, metrics.LeaseConflicts,
	metrics.MessagesAccepted, metrics.MessagesReplayed, metrics.MessagesRefused,
}

// parseDocument reads line as a metrics document of namespace pushfn, or returns an error
// wrapping errNotDocument for a line that is not one (a log line, or a document of another
// namespace), or naming the member that could not be read.
func parseDocument(line []byte) (document, error) {
	var d document
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(`"_aws"`)) {
		return d, errNotDocument
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return d, fmt.Errorf("%w: %w", errNotDocument, err)
	}
	var meta struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace string `json:"Namespace"`
		} `json:"CloudWatchMetrics"`
	}
	if err := json.Unmarshal(root["_aws"], &meta); err != nil {
		return d, fmt.Errorf("%w: _aws: %w", errNotDocument, err)
	}
	if len(meta.CloudWatchMetrics) == 0 || meta.CloudWatchMetrics[0].Namespace != metrics.Namespace {
		return d, fmt.Errorf("%w: not of namespace %s", errNotDocument, metrics.Namespace)
	}
	d.at = time.UnixMilli(meta.Timestamp)
	d.counts = map[string]float64{}
	for _, f := range []struct {
		name string
		into *string
	}{{metrics.DimFunction, &d.function}, {metrics.DimOutcome, &d.outcome}, {metrics.DimCode, &d.code}} {
		if raw, ok := root[f.name]; ok {
			if err := json.Unmarshal(raw, f.into); err != nil {
				return d, fmt.Errorf("dimension %s: %w", f.name, err)
			}
		}
	}
	for _, name := range counted {
		raw, ok := root[name]
		if !ok {
			continue
		}
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return d, fmt.Errorf("metric %s: %w", name, err)
		}
		if !inRange(v) {
			return d, fmt.Errorf("metric %s: %v is out of range", name, v)
		}
		d.counts[name] = v
	}
	if raw, ok := root[metrics.AttemptLatency]; ok {
		d.latency = &latencyValue{}
		if err := json.Unmarshal(raw, d.latency); err != nil {
			return d, fmt.Errorf("metric %s: %w", metrics.AttemptLatency, err)
		}
		if err := d.latency.check(); err != nil {
			return d, fmt.Errorf("metric %s: %w", metrics.AttemptLatency, err)
		}
	}
	for _, p := range []struct {
		name string
		into *map[string]map[string]float64
	}{{metrics.PropTargetHosts, &d.hosts}, {metrics.PropEndpoints, &d.eps}} {
		if raw, ok := root[p.name]; ok {
			if err := json.Unmarshal(raw, p.into); err != nil {
				return d, fmt.Errorf("property %s: %w", p.name, err)
			}
			for key, outcomes := range *p.into {
				for o, v := range outcomes {
					if !inRange(v) {
						return d, fmt.Errorf("property %s: %s %s: %v is out of range", p.name, key, o, v)
					}
				}
			}
		}
	}
	return d, nil
}

// maxValue bounds every value the Board adds up: no count or latency comes near it, and sums of
// values under it stay finite.
const maxValue = 1e15

// inRange reports whether v is a count the Board adds up: from 0 to maxValue.
func inRange(v float64) bool { return v >= 0 && v <= maxValue }

// check reports why l cannot be added up: arrays of different lengths, a count that is not
// positive, a value out of range, or a Count that is not the sum of the counts.
func (l *latencyValue) check() error {
	if len(l.Values) != len(l.Counts) {
		return fmt.Errorf("%d values and %d counts", len(l.Values), len(l.Counts))
	}
	var n float64
	for i, c := range l.Counts {
		if c <= 0 || !inRange(c) || !inRange(l.Values[i]) {
			return fmt.Errorf("value %v with count %v", l.Values[i], c)
		}
		n += c
	}
	if n != l.Count || !inRange(l.Min) || !inRange(l.Max) || !inRange(l.Sum) {
		return fmt.Errorf("count %v, min %v, max %v, sum %v for counts adding up to %v", l.Count, l.Min, l.Max, l.Sum, n)
	}
	return nil
}
