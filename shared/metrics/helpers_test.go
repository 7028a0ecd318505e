package metrics_test

import (
	"encoding/json"
	"testing"
)

func decode(t *testing.T, line []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(line, v); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
}
