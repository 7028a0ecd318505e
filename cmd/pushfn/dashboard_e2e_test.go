package main

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pushfn/pushfn/shared/local/template"
	"github.com/pushfn/pushfn/shared/metrics"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// checkDashboardShows fails t for each metric of docs, documents a run of the real functions
// wrote, that the template's dashboard does not draw under the same dimensions. Locally a
// function's name, the function dimension, is its logical id, which the dashboard names as
// ${LogicalId}.
func checkDashboardShows(t *testing.T, docs []metricstest.Document) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := template.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		dims := maps.Clone(d.Dimensions)
		dims[metrics.DimFunction] = "${" + dims[metrics.DimFunction] + "}"
		for _, name := range slices.Sorted(maps.Keys(d.Values)) {
			ok, err := tm.DashboardShows(metrics.Namespace, name, dims)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Errorf("the run wrote %s under %v, which the template's dashboard does not draw", name, dims)
			}
			seen[name] = true
		}
	}
	if len(seen) == 0 {
		t.Error("no metric to check against the dashboard")
	}
	t.Logf("the dashboard draws every one of the %d metrics the run wrote: %v", len(seen), slices.Sorted(maps.Keys(seen)))
}
