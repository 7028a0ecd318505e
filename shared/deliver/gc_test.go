package deliver

import "testing"

func TestGCSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"lambda", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, GCPercent, 858993459},
		{"outside lambda", nil, GCPercent, 0},
		{"GOGC set", map[string]string{"GOGC": "50", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, 0, 107374182},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "100MiB", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, GCPercent, 0},
		{"memory size unreadable", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, GCPercent, 0},
		{"memory size absurd", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "-1"}, GCPercent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			percent, limit := gcSettings(func(k string) string { return tt.env[k] })
			if percent != tt.wantPercent || limit != tt.wantLimit {
				t.Fatalf("gcSettings = %d, %d; want %d, %d", percent, limit, tt.wantPercent, tt.wantLimit)
			}
		})
	}
}
