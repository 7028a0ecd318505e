// Package metricstest checks documents against the rules of the CloudWatch Embedded Metric
// Format specification, and reads their values, for tests of what the functions write.
//
// Tests only: no function links it.
package metricstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/metrics"
)

// ErrInvalid is wrapped by every error Check returns.
var ErrInvalid = errors.New("not a valid embedded metric format document")

// Limits of the specification.
const (
	MaxMetrics    = 100 // metric definitions in one directive
	MaxDimensions = 30  // dimensions in one dimension set
	MaxValues     = 100 // values of one metric in one document
	MaxNameLength = 1024
)

// Units is the set of units the specification allows.
var Units = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// Document is a checked document: its dimension values, and its metrics with their units and
// values (the sum of the values, for an array or a value/count object).
type Document struct {
	Timestamp  int64
	Dimensions map[string]string
	Units      map[string]string
	Values     map[string]float64
	Counts     map[string]float64 // how many values each metric carries
}

// IsDocument reports whether line is meant as one: a JSON object with an _aws member.
func IsDocument(line []byte) bool {
	var root map[string]json.RawMessage
	if json.Unmarshal(line, &root) != nil {
		return false
	}
	_, ok := root["_aws"]
	return ok
}

// Check checks line, one log line, as a document of namespace pushfn: a JSON object whose _aws
// member has a millisecond Timestamp and CloudWatchMetrics directives, each with the namespace,
// dimension sets of 1 to 30 keys each present at the root as a non-empty string, 1 to 100 metric
// definitions with distinct names and units from the allowed set, each present at the root as a
// number, an array of 1 to 100 numbers, or a value/count object ({"Values": [...], "Counts":
// [...]}) of equal-length arrays of 1 to 100 entries with positive counts.
func Check(line []byte) (Document, error) {
	doc := Document{Dimensions: map[string]string{}, Units: map[string]string{}, Values: map[string]float64{}, Counts: map[string]float64{}}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return doc, fmt.Errorf("%w: not a JSON object: %w", ErrInvalid, err)
	}
	var meta struct {
		Timestamp         *json.Number `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  *string          `json:"Namespace"`
			Dimensions [][]string       `json:"Dimensions"`
			Metrics    []map[string]any `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return doc, fmt.Errorf("%w: no _aws member", ErrInvalid)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return doc, fmt.Errorf("%w: _aws: %w", ErrInvalid, err)
	}
	if meta.Timestamp == nil {
		return doc, fmt.Errorf("%w: _aws.Timestamp missing", ErrInvalid)
	}
	ts, err := meta.Timestamp.Int64()
	if err != nil || ts < 1e12 { // milliseconds since the epoch: past 2001
		return doc, fmt.Errorf("%w: _aws.Timestamp %s is not a time in milliseconds", ErrInvalid, meta.Timestamp)
	}
	doc.Timestamp = ts
	if len(meta.CloudWatchMetrics) == 0 {
		return doc, fmt.Errorf("%w: _aws.CloudWatchMetrics is empty", ErrInvalid)
	}
	for i, d := range meta.CloudWatchMetrics {
		at := fmt.Sprintf("_aws.CloudWatchMetrics[%d]", i)
		if d.Namespace == nil || *d.Namespace != metrics.Namespace {
			return doc, fmt.Errorf("%w: %s.Namespace is not %q", ErrInvalid, at, metrics.Namespace)
		}
		if d.Dimensions == nil {
			return doc, fmt.Errorf("%w: %s.Dimensions missing", ErrInvalid, at)
		}
		for j, set := range d.Dimensions {
			if len(set) == 0 || len(set) > MaxDimensions {
				return doc, fmt.Errorf("%w: %s.Dimensions[%d] has %d dimensions, want 1 to %d", ErrInvalid, at, j, len(set), MaxDimensions)
			}
			for _, key := range set {
				var v string
				if err := json.Unmarshal(root[key], &v); err != nil || v == "" || len(v) > MaxNameLength {
					return doc, fmt.Errorf("%w: %s.Dimensions[%d]: dimension %q is not a non-empty string at the root", ErrInvalid, at, j, key)
				}
				doc.Dimensions[key] = v
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > MaxMetrics {
			return doc, fmt.Errorf("%w: %s has %d metrics, want 1 to %d", ErrInvalid, at, len(d.Metrics), MaxMetrics)
		}
		for j, m := range d.Metrics {
			name, _ := m["Name"].(string)
			if name == "" || len(name) > MaxNameLength {
				return doc, fmt.Errorf("%w: %s.Metrics[%d].Name is not a non-empty string", ErrInvalid, at, j)
			}
			if _, dup := doc.Units[name]; dup {
				return doc, fmt.Errorf("%w: %s: metric %s declared twice", ErrInvalid, at, name)
			}
			unit := "None"
			if u, present := m["Unit"]; present {
				s, _ := u.(string)
				if !Units[s] {
					return doc, fmt.Errorf("%w: %s: metric %s has unit %v, not one the specification allows", ErrInvalid, at, name, u)
				}
				unit = s
			}
			if r, present := m["StorageResolution"]; present && r != 1.0 && r != 60.0 {
				return doc, fmt.Errorf("%w: %s: metric %s has StorageResolution %v, want 1 or 60", ErrInvalid, at, name, r)
			}
			sum, n, err := value(root[name])
			if err != nil {
				return doc, fmt.Errorf("%w: metric %s: %w", ErrInvalid, name, err)
			}
			doc.Units[name], doc.Values[name], doc.Counts[name] = unit, sum, n
		}
	}
	for name := range doc.Values {
		if _, clash := doc.Dimensions[name]; clash {
			return doc, fmt.Errorf("%w: %s is both a dimension and a metric", ErrInvalid, name)
		}
	}
	return doc, nil
}

// value reads a metric's value at the root: its sum and how many values it carries.
func value(raw json.RawMessage) (sum, n float64, _ error) {
	if raw == nil {
		return 0, 0, errors.New("no value at the root")
	}
	var x float64
	if json.Unmarshal(raw, &x) == nil {
		return x, 1, nil
	}
	var xs []float64
	if json.Unmarshal(raw, &xs) == nil {
		if len(xs) == 0 || len(xs) > MaxValues {
			return 0, 0, fmt.Errorf("%d values, want 1 to %d", len(xs), MaxValues)
		}
		for _, v := range xs {
			sum += v
		}
		return sum, float64(len(xs)), nil
	}
	var vc struct {
		Values []float64 `json:"Values"`
		Counts []float64 `json:"Counts"`
		Min    *float64  `json:"Min"`
		Max    *float64  `json:"Max"`
		Sum    *float64  `json:"Sum"`
		Count  *float64  `json:"Count"`
	}
	if err := json.Unmarshal(raw, &vc); err != nil {
		return 0, 0, fmt.Errorf("not a number, an array of numbers or a value/count object: %s", raw)
	}
	if len(vc.Values) == 0 || len(vc.Values) > MaxValues || len(vc.Counts) != len(vc.Values) {
		return 0, 0, fmt.Errorf("%d values and %d counts, want as many of each, 1 to %d", len(vc.Values), len(vc.Counts), MaxValues)
	}
	for i, c := range vc.Counts {
		if c <= 0 {
			return 0, 0, fmt.Errorf("count %v of value %v is not positive", c, vc.Values[i])
		}
		sum += vc.Values[i] * c
		n += c
	}
	if vc.Count != nil && *vc.Count != n {
		return 0, 0, fmt.Errorf("the member Count is %v, but the counts add up to %v", *vc.Count, n)
	}
	if vc.Min != nil && vc.Max != nil && *vc.Min > *vc.Max {
		return 0, 0, fmt.Errorf("the member Min, %v, is above Max, %v", *vc.Min, *vc.Max)
	}
	if vc.Sum != nil {
		sum = *vc.Sum
	}
	return sum, n, nil
}

// Documents checks every document among the lines of out (lines that are not JSON objects with an
// _aws member are skipped) and returns them, failing t for one that is not valid.
func Documents(t testing.TB, out string) []Document {
	t.Helper()
	var docs []Document
	for l := range strings.Lines(out) {
		line := []byte(strings.TrimSpace(l))
		if !IsDocument(line) {
			continue
		}
		d, err := Check(line)
		if err != nil {
			t.Errorf("%v: %s", err, line)
			continue
		}
		docs = append(docs, d)
	}
	return docs
}

// Sum adds up metric name over docs, counting only documents whose dimensions include every
// one of dims.
func Sum(docs []Document, name string, dims map[string]string) float64 {
	var total float64
	for _, d := range docs {
		v, ok := d.Values[name]
		if !ok {
			continue
		}
		match := true
		for k, want := range dims {
			match = match && d.Dimensions[k] == want
		}
		if match {
			total += v
		}
	}
	return total
}
