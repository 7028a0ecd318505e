package lambdarun_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	declared := map[string]string{"TABLE_NAME": "pushfn", "LOG_LEVEL": "info", "MAX_ATTEMPTS": "10", "QUEUE_URL": ""}
	shell := map[string]string{"LOG_LEVEL": "warn", "UNDECLARED": "x", "QUEUE_URL": "http://q"}
	tests := []struct {
		name string
		file string
		want map[string]string
	}{
		{name: "no file", want: map[string]string{"TABLE_NAME": "pushfn", "LOG_LEVEL": "warn", "MAX_ATTEMPTS": "10", "QUEUE_URL": "http://q"}},
		{
			name: "parameters then function",
			file: `{"Parameters": {"LOG_LEVEL": "debug", "MAX_ATTEMPTS": 3}, "ApiFunction": {"LOG_LEVEL": "error", "NEW": "ignored"}, "Other": {"TABLE_NAME": "no"}}`,
			want: map[string]string{"TABLE_NAME": "pushfn", "LOG_LEVEL": "error", "MAX_ATTEMPTS": "3", "QUEUE_URL": "http://q"},
		},
		{
			name: "booleans as text",
			file: `{"ApiFunction": {"TABLE_NAME": true}}`,
			want: map[string]string{"TABLE_NAME": "true", "LOG_LEVEL": "warn", "MAX_ATTEMPTS": "10", "QUEUE_URL": "http://q"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var file lambdarun.EnvFile
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "env.json")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				var err error
				if file, err = lambdarun.ReadEnvFile(path); err != nil {
					t.Fatal(err)
				}
			}
			lookup := func(k string) (string, bool) { v, ok := shell[k]; return v, ok }
			if got := lambdarun.Resolve("ApiFunction", declared, lookup, file); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadEnvFileRejects(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{`[]`, `{"ApiFunction": "x"}`, `{"ApiFunction": {"A": {"b": 1}}}`, `not json`} {
		path := filepath.Join(t.TempDir(), "env.json")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := lambdarun.ReadEnvFile(path); err == nil {
			t.Errorf("ReadEnvFile(%s) accepted", doc)
		}
	}
	if _, err := lambdarun.ReadEnvFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("ReadEnvFile of a missing file succeeded")
	}
}
