package lambdarun_test

import (
	"context"
	"io"
	"testing"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// BenchmarkInvoke measures one warm invoke through the Runtime API: the round trip a local API
// request or a deliver batch adds to the function's own work.
func BenchmarkInvoke(b *testing.B) {
	f := lambdarun.NewFunction(lambdarun.Config{Path: bootstrap, Output: io.Discard})
	b.Cleanup(func() { _ = f.Close() })
	ctx := context.Background()
	event := []byte(`{"action":"echo"}`)
	if _, fnErr, err := f.Invoke(ctx, event); err != nil || fnErr != nil {
		b.Fatal(err, fnErr)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, fnErr, err := f.Invoke(ctx, event); err != nil || fnErr != nil {
			b.Fatal(err, fnErr)
		}
	}
}
