package metricstest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// good is a valid document; the bad ones below each break one rule of it.
const good = `{"_aws":{"Timestamp":1767000000000,"CloudWatchMetrics":[{"Namespace":"pushfn",` +
	`"Dimensions":[["service","function","outcome"]],"Metrics":[{"Name":"Deliveries","Unit":"Count"},{"Name":"AttemptLatency","Unit":"Milliseconds"}]}]},` +
	`"service":"pushfn","function":"DeliverFunction","outcome":"delivered","Deliveries":3,` +
	`"AttemptLatency":{"Values":[1,20],"Counts":[2,1],"Min":1,"Max":20,"Sum":22,"Count":3}}`

func TestCheckAcceptsAValidDocument(t *testing.T) {
	t.Parallel()
	d, err := metricstest.Check([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if d.Values["Deliveries"] != 3 || d.Values["AttemptLatency"] != 22 || d.Counts["AttemptLatency"] != 3 ||
		d.Dimensions["outcome"] != "delivered" || d.Units["AttemptLatency"] != "Milliseconds" {
		t.Errorf("read %+v", d)
	}
}

func TestCheckRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, from, to string }{
		{"not JSON", `{"_aws"`, `["_aws"`},
		{"no _aws", `"_aws"`, `"aws"`},
		{"no timestamp", `"Timestamp":1767000000000,`, ``},
		{"timestamp in seconds", `1767000000000`, `1767000000`},
		{"no directive", `"CloudWatchMetrics":[{`, `"CloudWatchMetrics":[],"x":[{`},
		{"another namespace", `"Namespace":"pushfn"`, `"Namespace":"other"`},
		{"no dimensions member", `"Dimensions":[["service","function","outcome"]],`, ``},
		{"an empty dimension set", `[["service","function","outcome"]]`, `[[]]`},
		{"a declared dimension absent", `"outcome":"delivered",`, ``},
		{"a dimension not a string", `"outcome":"delivered"`, `"outcome":7`},
		{"an empty dimension value", `"outcome":"delivered"`, `"outcome":""`},
		{"a unit not allowed", `"Unit":"Count"`, `"Unit":"Items"`},
		{"a metric without a name", `{"Name":"Deliveries","Unit":"Count"}`, `{"Unit":"Count"}`},
		{"a metric declared twice", `{"Name":"AttemptLatency","Unit":"Milliseconds"}`, `{"Name":"Deliveries","Unit":"Count"}`},
		{"a declared metric without a value", `"Deliveries":3,`, ``},
		{"a value that is a string", `"Deliveries":3`, `"Deliveries":"3"`},
		{"values and counts of different lengths", `"Counts":[2,1]`, `"Counts":[3]`},
		{"a count not positive", `"Counts":[2,1]`, `"Counts":[3,0]`},
		{"Count not the counts' sum", `"Count":3`, `"Count":4`},
		{"Min above Max", `"Min":1,"Max":20`, `"Min":21,"Max":20`},
		{"an empty array of values", `"Deliveries":3`, `"Deliveries":[]`},
		{"a bad storage resolution", `"Unit":"Count"}`, `"Unit":"Count","StorageResolution":5}`},
		{"a metric that is a dimension", `{"Name":"Deliveries","Unit":"Count"}`, `{"Name":"outcome","Unit":"Count"}`},
		{"more than 100 values", `"Deliveries":3`, `"Deliveries":[` + strings.Repeat("1,", 100) + `1]`},
		{"more than 100 metrics", `"Metrics":[`, `"Metrics":[` + strings.Repeat(`{"Name":"Deliveries"},`, 100)},
		{"more than 30 dimensions", `[["service",`, `[[` + strings.Repeat(`"service",`, 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := strings.Replace(good, tt.from, tt.to, 1)
			if doc == good {
				t.Fatalf("%q is not in the document", tt.from)
			}
			if _, err := metricstest.Check([]byte(doc)); !errors.Is(err, metricstest.ErrInvalid) {
				t.Errorf("Check: %v, want %v\n%s", err, metricstest.ErrInvalid, doc)
			}
		})
	}
}

func TestDocumentsSkipsOtherLines(t *testing.T) {
	t.Parallel()
	out := `{"level":"INFO","msg":"delivery"}` + "\nnot json\n" + good + "\n"
	docs := metricstest.Documents(t, out)
	if len(docs) != 1 || metricstest.Sum(docs, "Deliveries", map[string]string{"outcome": "delivered"}) != 3 ||
		metricstest.Sum(docs, "Deliveries", map[string]string{"outcome": "failed"}) != 0 {
		t.Errorf("documents %+v", docs)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"_aws":{}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		d, err := metricstest.Check(line)
		if err != nil && !errors.Is(err, metricstest.ErrInvalid) {
			t.Errorf("error %v does not wrap ErrInvalid", err)
		}
		if err == nil && len(d.Values) == 0 {
			t.Errorf("valid with no metric: %s", line)
		}
	})
}
