package lambdarun_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// Config.Invoked sees each invoke the process ran, with the init billed on the process's first
// invoke only, and a duration that covers what the handler did.
func TestInvokedReportsEachInvoke(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []lambdarun.Invoked
	f, _ := newFunction(t, lambdarun.Config{Name: "BilledFunction", Timeout: 10 * time.Second, MemoryMB: 512,
		Invoked: func(inv lambdarun.Invoked) {
			mu.Lock()
			got = append(got, inv)
			mu.Unlock()
		}})
	first, _ := invoke(t, f, `{"action":"echo"}`)
	second, _ := invoke(t, f, `{"action":"sleep","ms":200}`)
	_, fnErr := invoke(t, f, `{"action":"error"}`)
	if fnErr == nil {
		t.Fatal("the error action returned no error")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("Invoked called %d times, want 3 (an invoke that fails is billed too): %+v", len(got), got)
	}
	for i, inv := range got {
		if inv.Function != "BilledFunction" || inv.MemoryMB != 512 || inv.Duration <= 0 {
			t.Errorf("invoke %d: %+v, want the function's name, its 512 MB and a duration", i, inv)
		}
	}
	if got[0].RequestID != first.RequestID || got[1].RequestID != second.RequestID {
		t.Errorf("request ids %q, %q; want the invokes' %q, %q", got[0].RequestID, got[1].RequestID, first.RequestID, second.RequestID)
	}
	if got[0].Init <= 0 || got[1].Init != 0 || got[2].Init != 0 {
		t.Errorf("init %v, %v, %v: want it on the cold start only", got[0].Init, got[1].Init, got[2].Init)
	}
	if got[1].Duration < 200*time.Millisecond {
		t.Errorf("the 200 ms sleep lasted %v", got[1].Duration)
	}
}

func TestInvokedBilled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		inv  lambdarun.Invoked
		want time.Duration
	}{
		{lambdarun.Invoked{Duration: 1500 * time.Microsecond}, 2 * time.Millisecond},
		{lambdarun.Invoked{Duration: 2 * time.Millisecond}, 2 * time.Millisecond},
		{lambdarun.Invoked{Duration: time.Microsecond}, time.Millisecond},
		{lambdarun.Invoked{Duration: 10 * time.Millisecond, Init: 80*time.Millisecond + 300*time.Microsecond}, 91 * time.Millisecond},
	} {
		if got := tc.inv.Billed(); got != tc.want {
			t.Errorf("%+v billed %v, want %v", tc.inv, got, tc.want)
		}
	}
}
