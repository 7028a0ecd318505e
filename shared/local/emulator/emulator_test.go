package emulator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/awstest"
)

func TestOptionsFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		sqs, ddb int
		wantErr  string
	}{
		{name: "defaults", env: map[string]string{}, sqs: DefaultSQSPort, ddb: DefaultDynamoDBPort},
		{name: "overridden", env: map[string]string{EnvSQSPort: "4610", EnvDynamoDBPort: "8610"}, sqs: 4610, ddb: 8610},
		{name: "not a number", env: map[string]string{EnvSQSPort: "x"}, wantErr: EnvSQSPort},
		{name: "out of range", env: map[string]string{EnvDynamoDBPort: "70000"}, wantErr: EnvDynamoDBPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := OptionsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := o.SQSEndpoint(), "http://127.0.0.1:"+strconv.Itoa(tt.sqs); got != want {
				t.Errorf("SQSEndpoint = %s, want %s", got, want)
			}
			if got, want := o.DynamoDBEndpoint(), "http://127.0.0.1:"+strconv.Itoa(tt.ddb); got != want {
				t.Errorf("DynamoDBEndpoint = %s, want %s", got, want)
			}
			if !fileExists(filepath.Join(o.Root, "dev", "package-lock.json")) {
				t.Errorf("Root %s holds no dev/package-lock.json", o.Root)
			}
		})
	}
}

func TestFindRootOutsideRepository(t *testing.T) {
	t.Parallel()
	if _, err := FindRoot(t.TempDir()); err == nil {
		t.Fatal("FindRoot in an empty temporary directory succeeded")
	}
}

func TestReadPIDFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		content string
		want    pidFile
		ok      bool
	}{
		{"123 4566\n", pidFile{123, 4566}, true},
		{"123\n", pidFile{}, false},
		{"x 4566", pidFile{}, false},
		{"1 4566", pidFile{}, false}, // never signal init
		{"", pidFile{}, false},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "x.pid")
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, ok := readPIDFile(path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("readPIDFile(%q) = %v, %v; want %v, %v", tt.content, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 30 {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := tail(path, 3)
	if want := "line 27\nline 28\nline 29"; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}

// A port taken by something that is not the emulator makes Up fail and say so, without
// starting anything.
func TestUpRefusesBusyPort(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	o := Options{StateDir: t.TempDir(), SQSPort: port, DynamoDBPort: freePort(t), Timeout: 5 * time.Second}
	_, err := Up(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Up on a busy port: err = %v, want one saying the port is in use", err)
	}
	if fileExists(filepath.Join(o.StateDir, "sqs.pid")) {
		t.Error("Up left a PID file behind")
	}
}

// TestIntegrationUpDown starts both emulators on free ports, checks a second Up is a no-op,
// and that Down leaves no process behind.
func TestIntegrationUpDown(t *testing.T) {
	t.Parallel()
	if !awstest.Enabled() {
		t.Skipf("integration test: set %s=1 (make test does)", awstest.EnvIntegration)
	}
	ctx := context.Background()
	o := Options{StateDir: t.TempDir(), SQSPort: freePort(t), DynamoDBPort: freePort(t), Progress: testWriter{t}}
	t.Cleanup(func() { _ = Down(ctx, o) })

	first, err := Up(ctx, o)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	pids := map[string]int{}
	for _, st := range first {
		if !st.Running || !st.Started || st.PID == 0 || st.External {
			t.Fatalf("after the first Up: %+v, want running and started by us", st)
		}
		pids[st.Name] = st.PID
	}
	if len(pids) != 2 {
		t.Fatalf("Up returned %d states, want 2", len(first))
	}
	if err := probeSQS(ctx, o.SQSEndpoint()); err != nil {
		t.Errorf("ListQueues: %v", err)
	}
	if err := probeDynamoDB(ctx, o.DynamoDBEndpoint()); err != nil {
		t.Errorf("ListTables: %v", err)
	}

	second, err := Up(ctx, o)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if len(second) != 2 {
		t.Fatalf("second Up returned %d states, want 2", len(second))
	}
	for _, st := range second {
		if st.Started || !st.Running || st.PID != pids[st.Name] {
			t.Errorf("second Up changed %s: %+v, want pid %d running, not started", st.Name, st, pids[st.Name])
		}
	}

	if err := Down(ctx, o); err != nil {
		t.Fatalf("Down: %v", err)
	}
	for name, pid := range pids {
		if groupAlive(pid) {
			t.Errorf("%s process group %d still runs after Down", name, pid)
		}
		if fileExists(filepath.Join(o.StateDir, name+".pid")) {
			t.Errorf("%s PID file left after Down", name)
		}
	}
	for _, port := range []int{o.SQSPort, o.DynamoDBPort} {
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
			conn.Close()
			t.Errorf("port %d still answers after Down", port)
		}
	}
	states, err := Status(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 {
		t.Fatalf("Status after Down returned %d states, want 2", len(states))
	}
	for _, st := range states {
		if st.Running {
			t.Errorf("Status after Down: %v", st)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRunning covers the zombie leader: Linux marks a multi-threaded process's leader a zombie
// when its own thread ends, and the process runs (and holds its ports) until every thread ends.
func TestRunning(t *testing.T) {
	t.Parallel()
	self := os.Getpid() // a Go test binary runs several threads
	if !running(self, 'S') || !running(self, 'R') {
		t.Error("a sleeping or running process does not count as running")
	}
	if !running(self, 'Z') {
		t.Error("a zombie leader whose other threads live does not count as running")
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if running(gone.Process.Pid, 'Z') {
		t.Error("a reaped process counts as running")
	}
}

// A PID file whose process is another program (the PID was reused) is stale: Down must not
// signal that program, and Status drops the file.
func TestPIDOfAnotherProgramIsLeftAlone(t *testing.T) {
	t.Parallel()
	other := exec.Command("sleep", "30")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = other.Wait(); close(exited) }()
	t.Cleanup(func() { _ = other.Process.Kill(); <-exited })

	o := Options{StateDir: t.TempDir(), SQSPort: freePort(t), DynamoDBPort: freePort(t), Grace: 200 * time.Millisecond}
	pid := filepath.Join(o.StateDir, "sqs.pid")
	if err := os.WriteFile(pid, fmt.Appendf(nil, "%d %d\n", other.Process.Pid, o.SQSPort), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Down(context.Background(), o); err != nil {
		t.Fatalf("Down: %v", err)
	}
	select {
	case <-exited:
		t.Fatal("Down signalled a process that is not an emulator")
	case <-time.After(300 * time.Millisecond):
	}
	if err := os.WriteFile(pid, fmt.Appendf(nil, "%d %d\n", other.Process.Pid, o.SQSPort), 0o644); err != nil {
		t.Fatal(err)
	}
	states, err := Status(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if states[0].Running || states[0].PID != 0 {
		t.Errorf("Status = %+v, want sqs not running and no PID", states[0])
	}
	if fileExists(pid) {
		t.Error("Status kept a PID file whose process is not an emulator")
	}
}
