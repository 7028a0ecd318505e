package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/local/receiver"
)

// The end-to-end tests run the real pushfn binary: `pushfn run` builds the real functions and
// serves them against the emulators, and `pushfn invoke` runs the relay. Every test shares one
// stack, on its own table and queue.

// e2eStack is one `pushfn run` for a test.
type e2eStack struct {
	bin      string // the pushfn binary
	root     string // the repository
	buildDir string
	env      []string
	api      string // http://127.0.0.1:port
	status   string // the status page, http://127.0.0.1:port
	table    string
	queue    string
	key      []byte        // the signing key
	logs     *lockedBuffer // pushfn run's stderr: its own lines and the functions' log lines
}

// stackOptions change what startStackWith runs.
type stackOptions struct {
	env  []string // added to the environment of pushfn run (and so of the functions), last wins
	args []string // added to pushfn run's flags
}

func startStack(t *testing.T) *e2eStack {
	t.Helper()
	return startStackWith(t, stackOptions{})
}

func startStackWith(t *testing.T, o stackOptions) *e2eStack {
	t.Helper()
	awstest.Config(t) // skips unless PUSHFN_INTEGRATION=1, fails when the emulators are down
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &e2eStack{root: root, buildDir: filepath.Join(dir, "build"), bin: buildPushfn(t, root)}
	s.table, s.queue = dropStack(t)
	s.key = make([]byte, 32)
	_, _ = rand.Read(s.key)
	// SIGNING_SECRETS is declared by the template, so the shell's value applies, as with sam local.
	s.env = append(os.Environ(), "SIGNING_SECRETS=whsec_"+base64.StdEncoding.EncodeToString(s.key), "LOG_LEVEL=info")
	s.env = append(s.env, o.env...)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	args := append([]string{"run", "--port", "0", "--table", s.table, "--queue", s.queue,
		"--build-dir", s.buildDir, "--retry-base-delay", "1s", "--retry-max-delay", "2s", "--status-port", "0"}, o.args...)
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Dir = root
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s.logs = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("pushfn run after SIGTERM: %v", err)
			}
		case <-time.After(40 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("pushfn run did not stop within 40 s of SIGTERM")
		}
		if left := processesUnder(s.buildDir); len(left) > 0 {
			t.Errorf("processes left running after pushfn run stopped: %v", left)
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("pushfn run's log:\n%s", tail(s.logs.String(), 60))
		}
	})
	// The banner names the API, then the status page; both are read before the stack is used.
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var urls [2]string
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) >= 2 && f[0] == "API":
				urls[0] = f[1]
			case len(f) >= 2 && f[0] == "status":
				urls[1] = f[1]
				ready <- urls
			}
		}
	}()
	select {
	case urls := <-ready:
		s.api, s.status = urls[0], urls[1]
	case err := <-exited:
		t.Fatalf("pushfn run exited: %v\n%s", err, s.logs.String())
	case <-time.After(4 * time.Minute):
		t.Fatalf("pushfn run not ready after 4 minutes\n%s", s.logs.String())
	}
	return s
}

// buildPushfn builds the pushfn command for a test.
func buildPushfn(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushfn")
	build := exec.Command("go", "build", "-o", bin, "./cmd/pushfn")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pushfn: %v\n%s", err, out)
	}
	return bin
}

// processesUnder lists the processes running a binary below dir.
func processesUnder(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// target is a push target for one test: a shared/local/receiver.Receiver on loopback, checking each
// push's signature, with the pushes counted per message id.
type target struct {
	rc  *receiver.Receiver
	srv *httptest.Server

	mu       sync.Mutex
	requests map[string]int // webhook-id → pushes received
	bad      []string
}

// newTarget starts a target answering status (the first failFirst pushes of each message with
// failStatus).
func newTarget(t *testing.T, key []byte, status, failFirst, failStatus int) *target {
	tg := &target{requests: map[string]int{}}
	tg.rc = &receiver.Receiver{Status: status, FailFirst: failFirst, FailStatus: failStatus, Keys: [][]byte{key}}
	tg.rc.OnPush = func(p receiver.Push) {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		tg.requests[p.ID]++
		if !p.SignatureOK {
			tg.bad = append(tg.bad, fmt.Sprintf("%s: %v", p.ID, p.Err))
		}
	}
	tg.srv = httptest.NewServer(tg.rc)
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) url() string { return tg.srv.URL + "/push" }

func (tg *target) counts() (map[string]int, []string) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := make(map[string]int, len(tg.requests))
	for k, v := range tg.requests {
		out[k] = v
	}
	return out, append([]string(nil), tg.bad...)
}

type status struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
}

// awaitFinal polls GET /v1/messages/{id} until the message's status is final.
func (s *e2eStack) awaitFinal(t *testing.T, ctx context.Context, id string) status {
	t.Helper()
	for {
		var st status
		code := s.do(t, ctx, http.MethodGet, "/v1/messages/"+id, nil, &st)
		if code == http.StatusOK && (st.Status == "delivered" || st.Status == "failed" || st.Status == "expired") {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("message %s: last status %d %+v when the test's time ran out", id, code, st)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loggedEvent is an operational event as pushfn run's local EventBridge endpoint logs it.
type loggedEvent struct {
	Msg        string          `json:"msg"`
	Source     string          `json:"source"`
	Bus        string          `json:"event_bus_name"`
	DetailType string          `json:"detail_type"`
	Detail     json.RawMessage `json:"detail"`
}

// awaitEvent waits for pushfn run's log to show an operational event of detailType whose
// detail's field (message_id, endpoint_id) is id, and returns the first.
func (s *e2eStack) awaitEvent(t *testing.T, ctx context.Context, detailType, field, id string) loggedEvent {
	t.Helper()
	for {
		for l := range strings.Lines(s.logs.String()) {
			var ev loggedEvent
			var d map[string]any
			if json.Unmarshal([]byte(l), &ev) == nil && ev.Msg == "operational event" && ev.DetailType == detailType &&
				json.Unmarshal(ev.Detail, &d) == nil && d[field] == id {
				return ev
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s event with %s %s in pushfn run's log:\n%s", detailType, field, id, tail(s.logs.String(), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *e2eStack) do(t *testing.T, ctx context.Context, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.api+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func newMessage(target string, i int) map[string]any {
	return map[string]any{"target": map[string]any{"url": target}, "payload": map[string]any{"user_id": strconv.Itoa(i), "message": "Hello"}}
}

func TestIntegrationE2E(t *testing.T) {
	t.Parallel()
	s := startStack(t)

	t.Run("batch of 200 delivered once each, signed", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		r := newTarget(t, s.key, 200, 0, 0)
		msgs := make([]any, 200)
		for i := range msgs {
			msgs[i] = newMessage(r.url(), i)
		}
		var out struct {
			Messages []status `json:"messages"`
		}
		start := time.Now()
		if code := s.do(t, ctx, http.MethodPost, "/v1/messages/batch", map[string]any{"messages": msgs}, &out); code != http.StatusAccepted || len(out.Messages) != 200 {
			t.Fatalf("POST batch: %d with %d messages, want 202 with 200", code, len(out.Messages))
		}
		for _, m := range out.Messages {
			if st := s.awaitFinal(t, ctx, m.ID); st.Status != "delivered" || st.Attempts != 1 {
				t.Errorf("message %s: %+v, want delivered after 1 attempt", m.ID, st)
			}
		}
		t.Logf("200 messages accepted and delivered in %s", time.Since(start).Round(time.Millisecond))
		counts, bad := r.counts()
		if len(bad) > 0 {
			t.Errorf("%d pushes with a bad signature or content type, first: %s", len(bad), bad[0])
		}
		for _, m := range out.Messages {
			if counts[m.ID] != 1 {
				t.Errorf("message %s arrived %d times, want once", m.ID, counts[m.ID])
			}
		}
		if len(counts) != 200 {
			t.Errorf("%d distinct messages arrived, want 200", len(counts))
		}
	})

	t.Run("logs: the functions' lines name the function and the invocation", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r := newTarget(t, s.key, 200, 0, 0)
		var accepted status
		if code := s.do(t, ctx, http.MethodPost, "/v1/messages", newMessage(r.url(), 0), &accepted); code != http.StatusAccepted {
			t.Fatalf("POST: %d, want 202", code)
		}
		s.awaitFinal(t, ctx, accepted.ID)
		var lines []map[string]any
		for found := false; !found; {
			lines = lines[:0]
			for l := range strings.Lines(s.logs.String()) {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil {
					lines = append(lines, m)
					found = found || m["message"] == "delivery" && m["message_id"] == accepted.ID
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no delivery line for %s in pushfn run's log:\n%s", accepted.ID, tail(s.logs.String(), 30))
			case <-time.After(50 * time.Millisecond):
			}
		}
		seen, bad := map[string]int{}, map[string]int{}
		for _, m := range lines {
			fn := map[any]string{"request": "ApiFunction", "delivery": "DeliverFunction"}[m["message"]]
			if fn == "" {
				continue
			}
			seen[fn]++
			if id, _ := m["function_request_id"].(string); m["function_name"] != fn || id == "" {
				if bad[fn]++; bad[fn] == 1 {
					t.Errorf("%s's line %v: want function_name %s and a function_request_id", fn, m, fn)
				}
			}
		}
		if len(bad) > 0 {
			t.Errorf("lines without the function or the invocation: %v of %v", bad, seen)
		}
		if seen["ApiFunction"] == 0 || seen["DeliverFunction"] == 0 {
			t.Errorf("request and delivery lines: %v, want some of each", seen)
		}
	})

	t.Run("quick start: pushfn receiver and the curl commands", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		recv := startReceiver(t, ctx, s)
		post, get := quickstartCurls(t, filepath.Join(s.root, "README.md"))
		local := strings.NewReplacer("http://127.0.0.1:3000", s.api, "http://127.0.0.1:9000", recv.url)
		start := time.Now()
		out, err := exec.CommandContext(ctx, "sh", "-c", local.Replace(post)).Output()
		var accepted status
		if err != nil || json.Unmarshal(out, &accepted) != nil || accepted.Status != "accepted" {
			t.Fatalf("%s: %v: %s", post, err, out)
		}
		for {
			out, err := exec.CommandContext(ctx, "sh", "-c", strings.ReplaceAll(local.Replace(get), "<id>", accepted.ID)).Output()
			var st status
			if err == nil && json.Unmarshal(out, &st) == nil && st.Status == "delivered" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: not delivered: %v %s", get, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("the quick start's message was delivered %s after its curl", time.Since(start).Round(time.Millisecond))
		if want := "push id=" + accepted.ID + " "; !recv.await(ctx, want) || !strings.Contains(recv.output(), "signature=ok") {
			t.Errorf("pushfn receiver printed %q, want %q with signature=ok", recv.output(), want)
		}
	})

	t.Run("README HTTP API: every command answers as documented", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		doc, err := os.ReadFile(filepath.Join(s.root, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		// The examples' targets, hooks.example.com, become a loopback receiver answering 204 as
		// the README's GET shows: the test pushes nowhere else.
		r := newTarget(t, s.key, http.StatusNoContent, 0, 0)
		ids := runHTTPAPIExamples(t, ctx, string(doc), s.api, r.srv.URL)
		if len(ids) == 0 {
			t.Fatal("no README command got a message accepted")
		}
		for _, id := range ids {
			if st := s.awaitFinal(t, ctx, id); st.Status != "delivered" {
				t.Errorf("message %s: %+v, want delivered", id, st)
			}
		}
		counts, bad := r.counts()
		for _, id := range ids {
			if counts[id] != 1 {
				t.Errorf("message %s arrived %d times, want once", id, counts[id])
			}
		}
		if len(counts) != len(ids) || len(bad) > 0 {
			t.Errorf("the receiver got %v (bad: %v), want exactly the accepted messages %v", counts, bad, ids)
		}
	})

	t.Run("endpoints: create, list across pages, patch, rotate, delete", func(t *testing.T) {
		t.Parallel()
		testEndpointsE2E(t, s)
	})

	t.Run("README Endpoints: every command answers as documented", func(t *testing.T) {
		t.Parallel()
		testReadmeEndpoints(t, s)
	})

	t.Run("README Fan-out: two endpoints of a tenant, three event types, each signed with its own secret", func(t *testing.T) {
		t.Parallel()
		testFanOutReadme(t, s)
	})
	t.Run("README Window recovery: failed messages retried and recovered, each delivered once", func(t *testing.T) {
		t.Parallel()
		testRecoveryReadme(t, s)
	})
	t.Run("README Sending to an endpoint: signed with its secret, then disabled", func(t *testing.T) {
		t.Parallel()
		testSendingToEndpoint(t, s)
	})

	t.Run("endpoints: a second pushfn run reads the secrets the first stored", func(t *testing.T) {
		t.Parallel()
		testEndpointSecretsSurviveRestart(t, s)
	})

	tests := []struct {
		name         string
		status       int
		failFirst    int
		wantStatus   string
		wantAttempts int
	}{
		{name: "503 twice then 200", status: 200, failFirst: 2, wantStatus: "delivered", wantAttempts: 3},
		{name: "410 fails at once", status: 410, wantStatus: "failed", wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r := newTarget(t, s.key, tt.status, tt.failFirst, 503)
			var accepted status
			if code := s.do(t, ctx, http.MethodPost, "/v1/messages", newMessage(r.url(), 1), &accepted); code != http.StatusAccepted {
				t.Fatalf("POST: %d %+v", code, accepted)
			}
			st := s.awaitFinal(t, ctx, accepted.ID)
			if st.Status != tt.wantStatus || st.Attempts != tt.wantAttempts {
				t.Errorf("%+v, want %s after %d attempts", st, tt.wantStatus, tt.wantAttempts)
			}
			if counts, _ := r.counts(); counts[accepted.ID] != tt.wantAttempts {
				t.Errorf("the receiver got %d requests, want %d", counts[accepted.ID], tt.wantAttempts)
			}
		})
	}

	t.Run("operational event: a message failed by a 404 is published as pushfn.delivery.failed", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r := newTarget(t, s.key, http.StatusNotFound, 0, 0)
		var accepted status
		if code := s.do(t, ctx, http.MethodPost, "/v1/messages", newMessage(r.url(), 3), &accepted); code != http.StatusAccepted {
			t.Fatalf("POST: %d %+v", code, accepted)
		}
		if st := s.awaitFinal(t, ctx, accepted.ID); st.Status != "failed" || st.Attempts != 1 {
			t.Fatalf("%+v, want failed after 1 attempt", st)
		}
		ev := s.awaitEvent(t, ctx, "pushfn.delivery.failed", "message_id", accepted.ID)
		var d struct {
			MessageID  string `json:"message_id"`
			TargetHost string `json:"target_host"`
			Attempts   int    `json:"attempts"`
			Reason     string `json:"reason"`
		}
		if err := json.Unmarshal(ev.Detail, &d); err != nil || d.TargetHost != "127.0.0.1" && !strings.HasPrefix(d.TargetHost, "127.0.0.1:") ||
			d.Attempts != 1 || !strings.HasPrefix(d.Reason, "status 404") {
			t.Errorf("event detail %s (%v), want the message's host, 1 attempt and reason status 404", ev.Detail, err)
		}
		if ev.Source != "pushfn" || ev.Bus != "pushfn-local" {
			t.Errorf("event from %q on bus %q, want pushfn on pushfn-local", ev.Source, ev.Bus)
		}
	})

	relays := []struct {
		name  string
		event func(target string) any
	}{
		{name: "EventBridge event through the relay", event: func(target string) any {
			return map[string]any{
				"version": "0", "id": newUUID(), "detail-type": "OrderShipped", "source": "com.example.orders",
				"account": "123456789012", "time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1",
				"resources": []string{}, "detail": newMessage(target, 1),
			}
		}},
		{name: "SNS notification through the relay", event: func(target string) any {
			body, _ := json.Marshal(newMessage(target, 2))
			return map[string]any{"Records": []any{map[string]any{
				"EventVersion": "1.0", "EventSource": "aws:sns",
				"EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:pushfn:" + newUUID(),
				"Sns": map[string]any{
					"Type": "Notification", "MessageId": newUUID(), "TopicArn": "arn:aws:sns:us-east-1:123456789012:pushfn",
					"Subject": "", "Message": string(body), "Timestamp": time.Now().UTC().Format(time.RFC3339Nano),
					"SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertUrl": "https://example.com/cert.pem",
					"UnsubscribeUrl": "https://example.com/unsubscribe", "MessageAttributes": map[string]any{},
				},
			}}}
		}},
	}
	for _, tt := range relays {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r := newTarget(t, s.key, 200, 0, 0)
			event, _ := json.Marshal(tt.event(r.url()))
			path := filepath.Join(t.TempDir(), "event.json")
			if err := os.WriteFile(path, event, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, s.bin, "invoke", "RelayFunction", "-e", path, "--table", s.table, "--queue", s.queue, "--build-dir", filepath.Join(t.TempDir(), "build"))
			cmd.Dir, cmd.Env = s.root, s.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("pushfn invoke RelayFunction: %v\nstdout: %s\nstderr: %s", err, out, tail(stderr.String(), 30))
			}
			var resp struct {
				Messages []status `json:"messages"`
			}
			if err := json.Unmarshal(out, &resp); err != nil || len(resp.Messages) != 1 || resp.Messages[0].ID == "" {
				t.Fatalf("relay response %s: %v", out, err)
			}
			id := resp.Messages[0].ID
			if st := s.awaitFinal(t, ctx, id); st.Status != "delivered" {
				t.Errorf("message %s: %+v, want delivered", id, st)
			}
			if counts, bad := r.counts(); counts[id] != 1 || len(bad) > 0 {
				t.Errorf("receiver: %v, bad %v: want message %s once, signed", counts, bad, id)
			}
		})
	}
}

// receiverProcess is a `pushfn receiver` started as the quick start starts it, on a free port.
type receiverProcess struct {
	url string
	out lockedBuffer
}

func startReceiver(t *testing.T, ctx context.Context, s *e2eStack) *receiverProcess {
	t.Helper()
	return startReceiverWith(t, ctx, s, "whsec_"+base64.StdEncoding.EncodeToString(s.key))
}

// startReceiverWith starts a `pushfn receiver` that checks signatures with secret.
func startReceiverWith(t *testing.T, ctx context.Context, s *e2eStack, secret string) *receiverProcess {
	t.Helper()
	return startReceiverArgs(t, ctx, s, "--secret", secret)
}

// startReceiverArgs starts pushfn receiver on a free loopback port with args.
func startReceiverArgs(t *testing.T, ctx context.Context, s *e2eStack, args ...string) *receiverProcess {
	t.Helper()
	rp := &receiverProcess{}
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"receiver", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Stdout = &rp.out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
			rp.url, _, _ = strings.Cut(rest, " ")
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return rp
		}
	}
	t.Fatalf("pushfn receiver did not say where it listens")
	return nil
}

func (rp *receiverProcess) output() string { return rp.out.String() }

// await waits until the receiver has printed want.
func (rp *receiverProcess) await(ctx context.Context, want string) bool {
	for !strings.Contains(rp.output(), want) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// quickstartCurls returns the curl commands of the README's quick start that post a message and
// get it.
func quickstartCurls(t *testing.T, path string) (post, get string) {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Quick start\n")
	if !ok {
		t.Fatalf("%s: no \"## Quick start\" section", path)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var cmds []string
	inBlock := false
	var cur strings.Builder
	for _, line := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inBlock = true
		case strings.HasPrefix(line, "```"):
			inBlock = false
		case inBlock:
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			if !strings.HasSuffix(line, "\\") {
				cmds = append(cmds, strings.TrimSpace(cur.String()))
				cur.Reset()
			}
		}
	}
	for _, c := range cmds {
		switch {
		case strings.HasPrefix(c, "curl") && strings.Contains(c, " -d "):
			post = c
		case strings.HasPrefix(c, "curl") && strings.Contains(c, "/v1/messages/<id>"):
			get = c
		}
	}
	if post == "" || get == "" {
		t.Fatalf("%s: no curl that posts a message and no curl that gets it in %q", path, cmds)
	}
	return post, get
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
