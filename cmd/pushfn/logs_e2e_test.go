package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/logging"
	"github.com/pushfn/pushfn/shared/metrics/metricstest"
)

// TestIntegrationLogsE2E runs a workload through the three real functions that takes the
// common paths, failures included (a push answered 500 then 400, so retried then failed; an
// endpoint's push retried after a 500; requests and a relayed event refused as invalid), with a
// planted secret, header value and payload marker in each message, then reads every line
// pushfn run and pushfn invoke (the relay) wrote:
//   - no line holds the stack's SIGNING_SECRETS value, the endpoint's secret, the custom header
//     value or the payload marker;
//   - every line of pushfn run that is not its own is one JSON object, and so is every line of
//     the relay's; each of these that is not a metrics document has level, message, timestamp,
//     service and function_name, and, as each is logged inside an invocation,
//     function_request_id, xray_trace_id and cold_start;
//   - cold_start is the same on every line of an invocation, true on each function's first
//     line, and false on some invocations (a process's later ones);
//   - the relay run with LOG_LEVEL=LOUD stops at init, with an ERROR line naming LOG_LEVEL.
func TestIntegrationLogsE2E(t *testing.T) {
	t.Parallel()
	s := startStack(t) // a stack of its own: its log holds this workload's lines only
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	headerValue, payloadMarker := "header-"+randomHex(t), "payload-"+randomHex(t)
	endpointSecret := newSecret(t)
	planted := map[string]string{
		"SIGNING_SECRETS":         base64.StdEncoding.EncodeToString(s.key),
		"the endpoint's secret":   strings.TrimPrefix(endpointSecret, "whsec_"),
		"the custom header value": headerValue,
		"the payload marker":      payloadMarker,
	}
	headers := map[string]any{"X-Planted": headerValue}
	payload := map[string]any{"note": payloadMarker}

	ok := newTarget(t, s.key, http.StatusOK, 0, 0)
	failing := newTarget(t, s.key, http.StatusBadRequest, 1, http.StatusInternalServerError) // 500, then 400
	endpointKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(endpointSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	retried := newTarget(t, endpointKey, http.StatusOK, 1, http.StatusInternalServerError) // 500, then 200
	var ep endpointView
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", map[string]any{"url": retried.url(), "secret": endpointSecret, "headers": headers}, &ep); code != http.StatusCreated {
		t.Fatalf("create the endpoint: %d %+v", code, ep)
	}

	var delivered, failed status
	if code := s.do(t, ctx, http.MethodPost, "/v1/messages", map[string]any{"target": map[string]any{"url": ok.url(), "headers": headers}, "payload": payload}, &delivered); code != http.StatusAccepted {
		t.Fatalf("POST to the target answering 200: %d", code)
	}
	var batch struct {
		Messages []status `json:"messages"`
	}
	msgs := []any{
		map[string]any{"target": map[string]any{"url": failing.url(), "headers": headers}, "payload": payload},
		map[string]any{"endpoint_id": ep.ID, "payload": payload},
	}
	if code := s.do(t, ctx, http.MethodPost, "/v1/messages/batch", map[string]any{"messages": msgs}, &batch); code != http.StatusAccepted || len(batch.Messages) != 2 {
		t.Fatalf("POST batch: %d with %d messages, want 202 with 2", code, len(batch.Messages))
	}
	failed = batch.Messages[0]
	viaEndpoint := batch.Messages[1]
	invalid := []struct {
		path string
		body any
	}{
		{"/v1/messages", map[string]any{"target": map[string]any{"url": "ftp://hooks.example.com/" + payloadMarker, "headers": headers}, "payload": payload}},
		{"/v1/messages", map[string]any{"target": map[string]any{"url": ok.url(), "headers": map[string]any{"Host": headerValue}}, "payload": payload}},
		{"/v1/messages/batch", map[string]any{"messages": append(msgs, map[string]any{"target": map[string]any{"url": ok.url(), "headers": headers}})}},
		{"/v1/messages", json.RawMessage(`{"target":{"url":"` + ok.url() + `"},"payload":{"note":"` + payloadMarker + `"},"payload":1}`)},
		{"/v1/endpoints", map[string]any{"url": ok.url(), "secret": endpointSecret + "!", "headers": headers}},
	}
	for _, r := range invalid {
		if code := s.do(t, ctx, http.MethodPost, r.path, r.body, nil); code != http.StatusBadRequest {
			t.Errorf("POST %s with an invalid body: %d, want 400", r.path, code)
		}
	}
	for id, want := range map[string]status{delivered.ID: {Status: "delivered", Attempts: 1}, failed.ID: {Status: "failed", Attempts: 2}, viaEndpoint.ID: {Status: "delivered", Attempts: 2}} {
		if st := s.awaitFinal(t, ctx, id); st.Status != want.Status || st.Attempts != want.Attempts {
			t.Errorf("message %s: %+v, want %s after %d attempts", id, st, want.Status, want.Attempts)
		}
	}
	// The deliver function logs a push's line as it records it: wait for the last ones.
	s.awaitLine(t, ctx, func(m map[string]any) bool {
		return m[logging.MessageKey] == "delivery" && m["message_id"] == viaEndpoint.ID && m["status"] == "delivered"
	})
	s.awaitLine(t, ctx, func(m map[string]any) bool {
		return m[logging.MessageKey] == "delivery" && m["message_id"] == failed.ID && m["status"] == "failed"
	})

	// The relay, through pushfn invoke: an event queuing a message like the others, delivered,
	// and one refused as invalid, logged with its reasons.
	relayed := newTarget(t, s.key, http.StatusOK, 0, 0)
	var relayLog strings.Builder
	relayOut, err := s.invokeRelay(t, ctx, &relayLog, map[string]any{"target": map[string]any{"url": relayed.url(), "headers": headers}, "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Messages []status `json:"messages"`
	}
	if err := json.Unmarshal(relayOut, &resp); err != nil || len(resp.Messages) != 1 {
		t.Fatalf("relay response %s: %v", relayOut, err)
	}
	if st := s.awaitFinal(t, ctx, resp.Messages[0].ID); st.Status != "delivered" {
		t.Errorf("relayed message %s: %+v, want delivered", resp.Messages[0].ID, st)
	}
	if _, err := s.invokeRelay(t, ctx, &relayLog, map[string]any{"target": map[string]any{"url": "ftp://hooks.example.com/" + payloadMarker, "headers": headers}, "payload": payload}); err != nil {
		t.Fatal(err)
	}
	// A level that is not one stops the function at init, with a line naming the variable.
	var initLog strings.Builder
	if out, err := s.invokeRelay(t, ctx, &initLog, map[string]any{"target": map[string]any{"url": relayed.url(), "headers": headers}, "payload": payload}, "LOG_LEVEL=LOUD"); err == nil {
		t.Errorf("the relay with LOG_LEVEL=LOUD answered %s, want a failure at init", out)
	}
	initFailed := false
	for l := range strings.Lines(initLog.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m[logging.FunctionNameKey] != "RelayFunction" {
			continue
		}
		e, _ := m["error"].(string)
		_, invoked := m[logging.RequestIDKey]
		initFailed = initFailed || m[logging.LevelKey] == "ERROR" && m[logging.MessageKey] == "start" && strings.Contains(e, "LOG_LEVEL") && !invoked
	}
	if !initFailed {
		t.Errorf("with LOG_LEVEL=LOUD, no ERROR line of the relay's init names LOG_LEVEL:\n%s", initLog.String())
	}

	stack := strings.Split(strings.TrimRight(s.logs.String(), "\n"), "\n")
	relay := strings.Split(strings.TrimRight(relayLog.String(), "\n"), "\n")
	for what, v := range planted {
		escaped, _ := json.Marshal(v)
		for _, l := range slices.Concat(stack, relay, strings.Split(initLog.String(), "\n")) {
			if strings.Contains(l, v) || strings.Contains(l, strings.Trim(string(escaped), `"`)) {
				t.Errorf("a line holds %s: %s", what, l)
			}
		}
	}

	// pushfn run's lines: its own (component "pushfn run"), metrics documents, the functions'.
	var fromRun []string
	for _, l := range stack {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["component"] == "pushfn run" {
			continue
		}
		fromRun = append(fromRun, l)
	}
	byFunction, warm := checkFunctionLines(t, fromRun, "ApiFunction", "DeliverFunction")
	// pushfn invoke's: its own lines are text (Building, Invoking, START, END, REPORT).
	var fromInvoke []string
	for _, l := range relay {
		if strings.HasPrefix(l, "{") {
			fromInvoke = append(fromInvoke, l)
		}
	}
	relayLines, _ := checkFunctionLines(t, fromInvoke, "RelayFunction")
	if byFunction["ApiFunction"] == 0 || byFunction["DeliverFunction"] == 0 || warm["ApiFunction"] == 0 || relayLines["RelayFunction"] < 2 {
		t.Errorf("lines by function %v and %v, of later invocations %v: want lines of the three, of a later ApiFunction invocation, and two of the relay's", byFunction, relayLines, warm)
	}
	t.Logf("%d lines of pushfn run and %d of pushfn invoke read; the functions' lines: %v %v, of later invocations %v", len(stack), len(relay), byFunction, relayLines, warm)
}

// checkFunctionLines checks lines the functions wrote, in the order written, metrics documents
// among them: each is a JSON object with level (one of Lambda's), message, timestamp (RFC 3339
// in UTC to the millisecond), service (pushfn) and function_name (one of functions), and, as
// each is logged inside an invocation, function_request_id, xray_trace_id and cold_start, which
// is the same on every line of an invocation and true on each function's first line. It returns
// the lines by function, and those of invocations that were not cold.
func checkFunctionLines(t *testing.T, lines []string, functions ...string) (byFunction, warm map[string]int) {
	t.Helper()
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	levels := map[any]bool{"TRACE": true, "DEBUG": true, "INFO": true, "WARN": true, "ERROR": true, "FATAL": true}
	byFunction, warm = map[string]int{}, map[string]int{}
	coldOf := map[string]bool{}       // request id → cold_start
	firstSeen := map[string]bool{}    // function → its first line read
	problems := map[string][]string{} // what is wrong → lines
	for _, l := range lines {
		if metricstest.IsDocument([]byte(l)) {
			continue // a metrics document, which the metrics test checks
		}
		bad := func(what string) { problems[what] = append(problems[what], l) }
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			bad("not a JSON object")
			continue
		}
		fn, _ := m[logging.FunctionNameKey].(string)
		if !slices.Contains(functions, fn) {
			bad(fmt.Sprintf("function_name not one of %v", functions))
			continue
		}
		byFunction[fn]++
		if !levels[m[logging.LevelKey]] {
			bad("level not one of Lambda's")
		}
		if msg, _ := m[logging.MessageKey].(string); msg == "" {
			bad("no message")
		}
		if ts, _ := m[logging.TimeKey].(string); !stamp.MatchString(ts) {
			bad("timestamp not RFC 3339 in UTC to the millisecond")
		}
		if m[logging.ServiceKey] != logging.DefaultService {
			bad("service not pushfn")
		}
		id, _ := m[logging.RequestIDKey].(string)
		if trace, _ := m[logging.TraceIDKey].(string); id == "" || !strings.HasPrefix(trace, "1-") {
			bad("no function_request_id or xray_trace_id")
		}
		cold, isBool := m[logging.ColdStartKey].(bool)
		if !isBool {
			bad("no cold_start")
			continue
		}
		if was, seen := coldOf[id]; seen && was != cold {
			bad("cold_start differs between lines of one invocation")
		}
		coldOf[id] = cold
		if !firstSeen[fn] && !cold {
			bad("cold_start false on a function's first line")
		}
		firstSeen[fn] = true
		if !cold {
			warm[fn]++
		}
	}
	for what, ls := range problems {
		t.Errorf("%d lines: %s; the first: %s", len(ls), what, ls[0])
	}
	return byFunction, warm
}

// invokeRelay runs the relay function once with an EventBridge event whose detail is message,
// through pushfn invoke with env added to the stack's, writing its stderr (the function's lines
// among pushfn invoke's own) to log, and returns the function's response.
func (s *e2eStack) invokeRelay(t *testing.T, ctx context.Context, log *strings.Builder, message map[string]any, env ...string) ([]byte, error) {
	t.Helper()
	event, _ := json.Marshal(map[string]any{
		"version": "0", "id": newUUID(), "detail-type": "OrderShipped", "source": "com.example.orders",
		"account": "123456789012", "time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1",
		"resources": []string{}, "detail": message,
	})
	path := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(path, event, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, s.bin, "invoke", "RelayFunction", "-e", path, "--table", s.table, "--queue", s.queue, "--build-dir", filepath.Join(s.buildDir, "relay"))
	cmd.Dir, cmd.Env = s.root, append(slices.Clip(s.env), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	log.Write(stderr.Bytes())
	if err != nil {
		return out, fmt.Errorf("pushfn invoke RelayFunction: %w\nstdout: %s\nstderr: %s", err, out, tail(stderr.String(), 30))
	}
	return out, nil
}

// awaitLine waits for pushfn run's log to hold a JSON line for which match is true.
func (s *e2eStack) awaitLine(t *testing.T, ctx context.Context, match func(map[string]any) bool) {
	t.Helper()
	for {
		for l := range strings.Lines(s.logs.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && match(m) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the line awaited is not in pushfn run's log:\n%s", tail(s.logs.String(), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
