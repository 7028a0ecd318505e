package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/logging"
)

// TestReadmeLogs keeps the README's Logs section to what the logger writes: its table names the
// keys the logging package writes, and its example line has each of them, a level Lambda reads
// and a timestamp of the logger's form.
func TestReadmeLogs(t *testing.T) {
	t.Parallel()
	doc := readReadme(t)
	start := strings.Index(doc, "\n## Logs\n")
	if start < 0 {
		t.Fatal("the README has no ## Logs section")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	written := []string{logging.LevelKey, logging.MessageKey, logging.TimeKey, logging.ServiceKey, logging.FunctionNameKey,
		logging.RequestIDKey, logging.ColdStartKey, logging.TraceIDKey}
	var documented []string
	for _, row := range regexp.MustCompile("(?m)^\\| (`[^|]+) \\|").FindAllStringSubmatch(section, -1) {
		for _, k := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(row[1], -1) {
			documented = append(documented, k[1])
		}
	}
	for _, k := range written {
		if !slices.Contains(documented, k) {
			t.Errorf("the logger writes %q; the README's table does not name it", k)
		}
	}
	for _, k := range []string{"message_id", "endpoint_id", "target_host", "attempt"} {
		if !slices.Contains(documented, k) {
			t.Errorf("the README's table does not name %q", k)
		}
	}

	block := regexp.MustCompile("(?s)```json\n(.*?)\n```").FindStringSubmatch(section)
	if block == nil {
		t.Fatal("the Logs section shows no example line")
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(block[1]), &line); err != nil {
		t.Fatalf("the example line is not a JSON object: %v", err)
	}
	for _, k := range written {
		if _, ok := line[k]; !ok {
			t.Errorf("the example line has no %q", k)
		}
	}
	if lvl, _ := line[logging.LevelKey].(string); lvl == "" {
		t.Errorf("example level %v", line[logging.LevelKey])
	} else if l, err := logging.ParseLevel(lvl); err != nil || logging.LevelName(l) != lvl {
		t.Errorf("example level %q is not one the logger writes", lvl)
	}
	if ts, _ := line[logging.TimeKey].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("example timestamp %q is not of the form %s", ts, logging.TimeFormat)
	}
	if id, _ := line[logging.TraceIDKey].(string); logging.TraceID("Root="+id+";Sampled=1") != id || !strings.HasPrefix(id, "1-") {
		t.Errorf("example xray_trace_id %q is not a trace header's Root", id)
	}
}
