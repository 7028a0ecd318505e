package lambdarun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// bootstrap is the test function (testdata/fn), built once for all tests.
var bootstrap string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambdarun")
	if err != nil {
		panic(err)
	}
	bootstrap = filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "./testdata/fn")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic(fmt.Sprintf("build test function: %v", err))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	Action      string            `json:"action"`
	PID         int               `json:"pid"`
	RequestID   string            `json:"request_id"`
	FunctionARN string            `json:"function_arn"`
	DeadlineMs  int64             `json:"deadline_ms"`
	Env         map[string]string `json:"env"`
	MaxInFlight int64             `json:"max_in_flight"`
}

func newFunction(t *testing.T, cfg lambdarun.Config) (*lambdarun.Function, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	cfg.Path = bootstrap
	if cfg.Name == "" {
		cfg.Name = "TestFunction"
	}
	cfg.Output = &out
	f := lambdarun.NewFunction(cfg)
	t.Cleanup(func() { _ = f.Close() })
	return f, &out
}

func invoke(t *testing.T, f interface {
	Invoke(context.Context, []byte) ([]byte, *lambdarun.FunctionError, error)
}, event string) (result, *lambdarun.FunctionError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, fnErr, err := f.Invoke(ctx, []byte(event))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", event, err)
	}
	var r result
	if fnErr == nil {
		if err := json.Unmarshal(resp, &r); err != nil {
			t.Fatalf("response %q: %v", resp, err)
		}
	}
	return r, fnErr
}

func TestInvokeResponse(t *testing.T) {
	t.Parallel()
	f, out := newFunction(t, lambdarun.Config{Name: "EchoFunction", Timeout: 5 * time.Second, MemoryMB: 256, Report: true,
		Env: map[string]string{"TABLE_NAME": "pushfn", "AWS_LAMBDA_FUNCTION_NAME": "not-this"}})
	before := time.Now()
	r, fnErr := invoke(t, f, `{"action":"env"}`)
	if fnErr != nil {
		t.Fatalf("function error: %v", fnErr)
	}
	checks := map[string]string{
		"TABLE_NAME":                      "pushfn",
		"AWS_LAMBDA_FUNCTION_NAME":        "EchoFunction",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "5",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_REGION":                      "us-east-1",
		"GOMEMLIMIT":                      "230MiB",
		"_HANDLER":                        "bootstrap",
	}
	for k, want := range checks {
		if got := r.Env[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if r.RequestID == "" || r.Env["AWS_LAMBDA_RUNTIME_API"] == "" {
		t.Errorf("request id %q, runtime API %q: want both set", r.RequestID, r.Env["AWS_LAMBDA_RUNTIME_API"])
	}
	if want := "arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"; r.FunctionARN != want {
		t.Errorf("function ARN %q, want %q", r.FunctionARN, want)
	}
	deadline := time.UnixMilli(r.DeadlineMs)
	if deadline.Before(before.Add(4*time.Second)) || deadline.After(time.Now().Add(5*time.Second)) {
		t.Errorf("deadline %v is not the 5 s timeout after the invoke", deadline)
	}
	// A second invoke reuses the warm process.
	again, fnErr := invoke(t, f, `{"action":"echo"}`)
	if fnErr != nil || again.PID != r.PID || again.RequestID == r.RequestID {
		t.Errorf("second invoke: pid %d (first %d), request id %q, error %v: want the same process, a new id", again.PID, r.PID, again.RequestID, fnErr)
	}
	for _, want := range []string{"START RequestId: " + r.RequestID, "REPORT RequestId: " + again.RequestID, "Memory Size: 256 MB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "Init Duration"); n != 1 || strings.Contains(out.String(), "Max Memory Used: 0 MB") {
		t.Errorf("%d init durations, want one for the cold start, and a memory figure:\n%s", n, out.String())
	}
}

func TestInvokeFunctionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		event    string
		cfg      lambdarun.Config
		wantType string
		wantMsg  string
	}{
		{name: "returned error", event: `{"action":"error"}`, wantType: "errorString", wantMsg: "the function failed"},
		{name: "panic", event: `{"action":"panic"}`, wantType: "string", wantMsg: "the function panicked"},
		{name: "exit", event: `{"action":"exit"}`, wantType: lambdarun.ErrorTypeExit, wantMsg: "exit status 7"},
		{name: "bad event", event: `{"action":"echo","ms":"x"}`, wantType: "UnmarshalTypeError"},
		{name: "init error posted", env: map[string]string{"FN_INIT": "error"}, event: `{"action":"echo"}`, wantType: "Runtime.TestInit", wantMsg: "TABLE_NAME is required"},
		{name: "exit during init", env: map[string]string{"FN_INIT": "exit"}, event: `{"action":"echo"}`, wantType: lambdarun.ErrorTypeExit, wantMsg: "exit status 1"},
		{name: "timeout", cfg: lambdarun.Config{Timeout: time.Second}, event: `{"action":"sleep","ms":60000}`, wantType: lambdarun.ErrorTypeTimeout, wantMsg: "Task timed out after 1.00 seconds"},
		{name: "out of memory", cfg: lambdarun.Config{MemoryMB: 64, Timeout: 20 * time.Second, Env: map[string]string{"GOMEMLIMIT": "off"}},
			event: `{"action":"alloc","mb":200,"ms":15000}`, wantType: lambdarun.ErrorTypeOutOfMemory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			if tt.env != nil {
				cfg.Env = tt.env
			}
			f, out := newFunction(t, cfg)
			_, fnErr := invoke(t, f, tt.event)
			if fnErr == nil {
				t.Fatalf("no function error; output:\n%s", out)
			}
			if fnErr.Type != tt.wantType || !strings.Contains(fnErr.Message, tt.wantMsg) {
				t.Errorf("error %+v, want type %q containing %q", fnErr, tt.wantType, tt.wantMsg)
			}
			if tt.env != nil {
				return
			}
			// The function answers again, from a fresh process where the last one died.
			if r, fnErr := invoke(t, f, `{"action":"echo"}`); fnErr != nil || r.Action != "echo" {
				t.Errorf("invoke after the failure: %+v, %v", r, fnErr)
			}
		})
	}
}

func TestInvokeRestartsAfterTimeout(t *testing.T) {
	t.Parallel()
	f, _ := newFunction(t, lambdarun.Config{Timeout: time.Second})
	first, fnErr := invoke(t, f, `{"action":"echo"}`)
	if fnErr != nil {
		t.Fatal(fnErr)
	}
	if _, fnErr := invoke(t, f, `{"action":"sleep","ms":60000}`); fnErr == nil || fnErr.Type != lambdarun.ErrorTypeTimeout {
		t.Fatalf("sleep past the timeout: %v, want %s", fnErr, lambdarun.ErrorTypeTimeout)
	}
	after, fnErr := invoke(t, f, `{"action":"echo"}`)
	if fnErr != nil {
		t.Fatal(fnErr)
	}
	if after.PID == first.PID {
		t.Errorf("pid %d after the timeout: want a new process", after.PID)
	}
	if err := exec.Command("kill", "-0", fmt.Sprint(first.PID)).Run(); err == nil {
		t.Errorf("process %d still runs after its timeout", first.PID)
	}
}

func TestInvokeOneAtATime(t *testing.T) {
	t.Parallel()
	f, _ := newFunction(t, lambdarun.Config{Timeout: 10 * time.Second})
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Go(func() { results[i], _ = invoke(t, f, `{"action":"sleep","ms":50}`) })
	}
	wg.Wait()
	for i, r := range results {
		if r.PID != results[0].PID || r.MaxInFlight != 1 {
			t.Errorf("invoke %d: pid %d (first %d), %d in flight: want one process serving one at a time", i, r.PID, results[0].PID, r.MaxInFlight)
		}
	}
}

// TestPoolConcurrency proves size invokes run at once: each blocks on a barrier that opens only
// when all have arrived.
func TestPoolConcurrency(t *testing.T) {
	t.Parallel()
	const size = 3
	var mu sync.Mutex
	arrived := 0
	open := make(chan struct{})
	barrier := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived == size {
			close(open)
		}
		mu.Unlock()
		select {
		case <-open:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(barrier.Close)
	pool := lambdarun.NewPool(lambdarun.Config{Name: "PoolFunction", Path: bootstrap, Timeout: 20 * time.Second, Output: &bytes.Buffer{}}, size)
	t.Cleanup(func() { _ = pool.Close() })
	event := fmt.Sprintf(`{"action":"barrier","url":%q}`, barrier.URL)
	var wg sync.WaitGroup
	pids := make([]int, size)
	for i := range size {
		wg.Go(func() {
			r, fnErr := invoke(t, pool, event)
			if fnErr != nil {
				t.Errorf("invoke %d: %v", i, fnErr)
			}
			pids[i] = r.PID
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, pid := range pids {
		seen[pid] = true
	}
	if len(seen) != size {
		t.Errorf("pids %v: want %d distinct processes", pids, size)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	f, _ := newFunction(t, lambdarun.Config{})
	r, fnErr := invoke(t, f, `{"action":"echo"}`)
	if fnErr != nil {
		t.Fatal(fnErr)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, lambdarun.ErrClosed) {
		t.Errorf("Invoke after Close: %v, want ErrClosed", err)
	}
	if err := exec.Command("kill", "-0", fmt.Sprint(r.PID)).Run(); err == nil {
		t.Errorf("process %d still runs after Close", r.PID)
	}
	if _, _, err := f.Invoke(context.Background(), make([]byte, lambdarun.MaxPayload+1)); !errors.Is(err, lambdarun.ErrPayloadTooLarge) {
		t.Errorf("Invoke of 6 MB + 1: %v, want ErrPayloadTooLarge", err)
	}
}

func TestInvokeCancelled(t *testing.T) {
	t.Parallel()
	f, _ := newFunction(t, lambdarun.Config{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, _, err := f.Invoke(ctx, []byte(`{"action":"sleep","ms":60000}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled invoke: %v, want context.DeadlineExceeded", err)
	}
	if r, fnErr := invoke(t, f, `{"action":"echo"}`); fnErr != nil || r.Action != "echo" {
		t.Errorf("invoke after a cancelled one: %+v, %v", r, fnErr)
	}
}
