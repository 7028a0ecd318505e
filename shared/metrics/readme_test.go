package metrics_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/metrics"
)

// The README's Metrics table lists every metric the functions write, with its unit, and no other.
func TestReadmeListsEveryMetric(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Metrics\n")
	if !ok {
		t.Fatal("README has no Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\| ([A-Za-z]+) \\|")
	got := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		got[m[1]] = m[2]
	}
	want := map[string]string{
		metrics.Deliveries: metrics.UnitCount, metrics.AttemptLatency: metrics.UnitMilliseconds, metrics.BatchSize: metrics.UnitCount,
		metrics.RecordsNotStarted: metrics.UnitCount, metrics.LeaseConflicts: metrics.UnitCount, metrics.MessagesAccepted: metrics.UnitCount,
		metrics.MessagesReplayed: metrics.UnitCount, metrics.MessagesRefused: metrics.UnitCount,
		metrics.AWSRequests: metrics.UnitCount,
	}
	for name, unit := range want {
		if got[name] != unit {
			t.Errorf("README lists %s with unit %q, want %q", name, got[name], unit)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("README lists %s, which no function writes", name)
		}
	}
	if !strings.Contains(section, "namespace `"+metrics.Namespace+"`") {
		t.Errorf("README's Metrics section does not name the namespace %s", metrics.Namespace)
	}
}
