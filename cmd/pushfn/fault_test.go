package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/local/faultproxy"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// The fault-injection scenarios run the real binaries (pushfn run: the api and deliver functions
// under the local Runtime API, the event source mapping) against the real emulators, and break
// something on purpose: the emulators behind a fault proxy (latency, refused connections,
// answers lost after the request was applied), a target that misbehaves, a deliver process
// killed mid-batch, malformed records put straight on the queue. Each checks, by the target's
// own count of 2xx answers per webhook-id and by the records themselves, that nothing accepted
// is lost, nothing is delivered twice except where a worker was killed between send and result,
// and every record ends final and says what happened.

// faultTemplate writes a copy of template.yaml with short timeouts, so a record whose worker
// died comes back within a minute: the deliver function times out after 10 s, the queue's
// visibility is 60 s (6 × 10 s), and one POST may take 2 s.
func faultTemplate(t *testing.T, root string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, r := range [][2]string{
		{"      Timeout: 120\n", "      Timeout: 10\n"},
		{`FUNCTION_TIMEOUT: "120"`, `FUNCTION_TIMEOUT: "10"`},
		{"VisibilityTimeout: 720", "VisibilityTimeout: 60"},
		{"  RequestTimeout:\n    Type: String\n    Default: \"10s\"", "  RequestTimeout:\n    Type: String\n    Default: \"2s\""},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("template.yaml no longer has %q: update faultTemplate", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// faultStack is a local stack whose emulators are reached through fault proxies.
type faultStack struct {
	*e2eStack
	sqs, ddb *faultproxy.Proxy
	records  *store.DynamoDB // the stack's table, read directly, around the proxies
	queueURL string
}

func startFaultStack(t *testing.T) *faultStack {
	t.Helper()
	awstest.Config(t) // skips unless PUSHFN_INTEGRATION=1
	proxy := func(env string) *faultproxy.Proxy {
		u := os.Getenv(env)
		host := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
		p, err := faultproxy.Start(strings.TrimSuffix(host, "/"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	fs := &faultStack{sqs: proxy(awstest.EnvSQSEndpoint), ddb: proxy(awstest.EnvDynamoDBEndpoint)}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fs.e2eStack = startStackWith(t, stackOptions{
		env:  []string{awstest.EnvSQSEndpoint + "=" + fs.sqs.URL(), awstest.EnvDynamoDBEndpoint + "=" + fs.ddb.URL()},
		args: []string{"--template", faultTemplate(t, root)},
	})
	fs.records = store.NewDynamoDB(awstest.DynamoDB(t), fs.table, 0)
	out, err := awstest.SQS(t).GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(fs.queue)})
	if err != nil {
		t.Fatal(err)
	}
	fs.queueURL = aws.ToString(out.QueueUrl)
	return fs
}

// Answers a faultTarget gives besides HTTP statuses.
const (
	answerReset   = 0  // reset the connection
	answerHang    = -1 // hold the push until the client gives up
	answerSmuggle = -2 // 503, then a second answer (200) nobody asked for, on a connection kept open
)

// faultTarget is a loopback target that answers each push as answer says and counts, per
// webhook-id, the pushes it answered 2xx.
type faultTarget struct {
	srv      *httptest.Server
	answer   func(n int64, r *http.Request) int // the status for the nth push (from 1), or an answer* constant
	n        atomic.Int64
	mu       sync.Mutex
	ok       map[string]int    // webhook-id → 2xx answers
	bodies   map[string]string // webhook-id → body of its last 2xx push
	received atomic.Int64
	held     []net.Conn // hijacked connections kept open, closed by the test's cleanup
}

func newFaultTarget(t *testing.T, answer func(n int64, r *http.Request) int) *faultTarget {
	t.Helper()
	ft := &faultTarget{answer: answer, ok: map[string]int{}, bodies: map[string]string{}}
	ft.srv = httptest.NewServer(http.HandlerFunc(ft.serve))
	t.Cleanup(ft.srv.Close)
	t.Cleanup(func() {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		for _, c := range ft.held {
			_ = c.Close()
		}
	})
	return ft
}

func (ft *faultTarget) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ft.received.Add(1)
	code := 200
	if ft.answer != nil {
		code = ft.answer(ft.n.Add(1), r)
	}
	switch {
	case code == answerReset:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
		}
		return
	case code == answerHang:
		<-r.Context().Done() // until the client gives up
		return
	case code == answerSmuggle:
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		_ = buf.Flush()
		ft.mu.Lock()
		ft.held = append(ft.held, conn)
		ft.mu.Unlock()
		return
	case code >= 200 && code < 300:
		ft.mu.Lock()
		id := r.Header.Get(push.HeaderID)
		ft.ok[id]++
		ft.bodies[id] = string(body)
		ft.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (ft *faultTarget) url() string { return ft.srv.URL + "/push" }

// body is the body of id's last push answered 2xx.
func (ft *faultTarget) body(id string) string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.bodies[id]
}

func (ft *faultTarget) delivered() map[string]int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return maps.Clone(ft.ok)
}

// keyed is a message to target with an idempotency key, so its id is known before it is sent.
func keyed(target, key string, i int) (map[string]any, string) {
	m := newMessage(target, i)
	m["idempotency_key"] = key
	return m, message.IDForKey(key)
}

// keyedMessages returns n messages to target keyed prefix-0, prefix-1, ... and their ids.
func keyedMessages(target, prefix string, n int) ([]any, []string) {
	msgs, ids := make([]any, n), make([]string, n)
	for i := range msgs {
		msgs[i], ids[i] = keyed(target, fmt.Sprintf("%s-%d", prefix, i), i)
	}
	return msgs, ids
}

// postKeyed posts n keyed messages to target one by one, each delayed in the queue by delay
// seconds, and returns the ids answered 202 or 200 and those answered 503; any other answer
// fails t.
func (fs *faultStack) postKeyed(t *testing.T, ctx context.Context, target, prefix string, n, delay int) (accepted, refused []string) {
	t.Helper()
	msgs, ids := keyedMessages(target, prefix, n)
	for i, m := range msgs {
		if delay > 0 {
			m.(map[string]any)["delay_seconds"] = delay
		}
		switch code, body := fs.post(ctx, "/v1/messages", m); code {
		case http.StatusAccepted, http.StatusOK:
			accepted = append(accepted, ids[i])
		case http.StatusServiceUnavailable:
			refused = append(refused, ids[i])
		default:
			t.Fatalf("POST %s-%d: %d %s", prefix, i, code, body)
		}
	}
	return accepted, refused
}

// acceptBatches posts n keyed messages to target in batches of 100, each of which must be
// answered 202, and returns their ids.
func (fs *faultStack) acceptBatches(t *testing.T, ctx context.Context, target string, n int) []string {
	t.Helper()
	msgs, ids := keyedMessages(target, t.Name(), n)
	for i := 0; i < n; i += 100 {
		if code, body := fs.post(ctx, "/v1/messages/batch", map[string]any{"messages": msgs[i:min(i+100, n)]}); code != http.StatusAccepted {
			t.Fatalf("batch: %d %s", code, body)
		}
	}
	return ids
}

// poll reports whether done became true, asking it every interval until ctx ends.
func poll(ctx context.Context, every time.Duration, done func() bool) bool {
	for !done() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(every):
		}
	}
	return true
}

// post sends one message and returns the status code; a transport error is -1.
func (s *e2eStack) post(ctx context.Context, path string, body any) (int, []byte) {
	b, err := json.Marshal(body)
	if err != nil {
		return -1, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.api+path, strings.NewReader(string(b)))
	if err != nil {
		return -1, nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, []byte(err.Error())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// awaitRecordsFinal waits until every id's record is final, reading the table directly, and
// returns the records and when the last one became final.
func (fs *faultStack) awaitRecordsFinal(t *testing.T, ctx context.Context, ids []string) map[string]message.Record {
	t.Helper()
	recs := make(map[string]message.Record, len(ids))
	pending := slices.Clone(ids)
	final := func() bool {
		pending = slices.DeleteFunc(pending, func(id string) bool {
			rec, err := fs.records.Get(ctx, id)
			if err == nil && rec.Status.Final() {
				recs[id] = rec
				return true
			}
			return false
		})
		return len(pending) == 0
	}
	if !poll(ctx, 250*time.Millisecond, final) {
		rec, err := fs.records.Get(context.Background(), pending[0])
		t.Fatalf("%d of %d records not final when the test's time ran out; first %s: %+v %v", len(pending), len(ids), pending[0], rec, err)
	}
	return recs
}

// checkDeliveredOnce checks that every id was delivered, its record says so, and the target
// answered 2xx to it exactly once, but where excused(id): a push whose 2xx could not be recorded
// (a worker killed between the send and the result write, or the store unreachable until the
// invocation's deadline, which the deliver function logs) may be sent again. It returns how many
// were delivered more than once.
func checkDeliveredOnce(t *testing.T, recs map[string]message.Record, got map[string]int, excused func(id string) bool) int {
	t.Helper()
	dups := 0
	for id, rec := range recs {
		if rec.Status != message.Delivered {
			t.Errorf("message %s ended %s (last attempt %+v), want delivered", id, rec.Status, rec.LastAttempt)
		}
		switch n := got[id]; {
		case n == 0:
			t.Errorf("message %s: the target never answered it 2xx, but its record says %s", id, rec.Status)
		case n > 1:
			dups++
			if !excused(id) {
				t.Errorf("message %s: the target answered it 2xx %d times", id, n)
			}
		}
	}
	return dups
}

// anyDuplicate excuses every second delivery: a scenario that kills workers mid-batch.
func anyDuplicate(string) bool { return true }

// unrecorded2xx returns the ids of messages whose 2xx the deliver function could not record
// before its invocation's deadline, as it logged them: the one case, with no worker dying, in
// which a message delivered may be sent again.
func (fs *faultStack) unrecorded2xx() func(id string) bool {
	ids := map[string]bool{}
	for l := range strings.Lines(fs.logs.String()) {
		var e struct {
			Message, Status string
			MessageID       string `json:"message_id"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Message == "recording the result failed" && e.Status == string(message.Delivered) {
			ids[e.MessageID] = true
		}
	}
	return func(id string) bool { return ids[id] }
}

func TestIntegrationFaultStorageOutage(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	tg := newFaultTarget(t, nil)

	var accepted, refused []string
	send := func(phase string, n, delay int) {
		// Delayed in the queue, so the deliver function meets the outage too.
		a, r := fs.postKeyed(t, ctx, tg.url(), t.Name()+"-"+phase, n, delay)
		accepted, refused = append(accepted, a...), append(refused, r...)
	}
	send("before", 100, 3)
	fs.ddb.SetLatency(500 * time.Millisecond)
	send("slow", 20, 2)
	fs.ddb.Refuse(true)
	outageStart := time.Now()
	send("down", 20, 0)
	// Keep the table down until the deliver function has failed claims on it: those records are
	// handed back to the queue, and must come back soon after the outage, not after the queue's
	// visibility timeout.
	if !poll(ctx, 100*time.Millisecond, func() bool { return strings.Count(fs.logs.String(), `"claim failed"`) >= 10 }) {
		t.Fatalf("the deliver function never failed a claim during the outage: %+v", fs.ddb.Stats())
	}
	fs.ddb.SetLatency(0)
	fs.ddb.Refuse(false)
	outageEnd := time.Now()

	recs := fs.awaitRecordsFinal(t, ctx, accepted)
	recovered := time.Since(outageEnd)
	got := tg.delivered()
	dups := checkDeliveredOnce(t, recs, got, fs.unrecorded2xx())
	for _, id := range refused {
		if got[id] > 0 {
			t.Errorf("message %s was answered 503 but delivered %d times", id, got[id])
		}
	}
	t.Logf("storage outage: %d accepted, %d refused with 503 during it, outage %s (%d connections refused, %d claims failed), every accepted message delivered %s after it ended, %d twice (its 2xx not recordable before the deadline, logged)",
		len(accepted), len(refused), outageEnd.Sub(outageStart).Round(time.Millisecond), fs.ddb.Stats().Refused,
		strings.Count(fs.logs.String(), `"claim failed"`), recovered.Round(time.Second), dups)
}

func TestIntegrationFaultLostStorageAnswers(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	tg := newFaultTarget(t, nil)
	// Every 30th DynamoDB answer is lost after DynamoDB applied the write: the SDK retries, and
	// the retry meets a condition its own first try already changed.
	fs.ddb.DropEvery(30)

	var accepted []string
	var unavailable, conflicts int
	for i := range 150 { // without keys: a 409 here can only be the api mistaking its own write
		code, body := fs.post(ctx, "/v1/messages", newMessage(tg.url(), i))
		switch code {
		case http.StatusAccepted:
			var st status
			if err := json.Unmarshal(body, &st); err != nil || st.ID == "" {
				t.Fatalf("202 without an id: %s", body)
			}
			accepted = append(accepted, st.ID)
		case http.StatusServiceUnavailable:
			unavailable++
		case http.StatusConflict:
			conflicts++
		default:
			t.Fatalf("POST: %d %s", code, body)
		}
	}
	for b := range 3 {
		msgs, ids := keyedMessages(tg.url(), fmt.Sprintf("%s-b%d", t.Name(), b), 50)
		code, body := fs.post(ctx, "/v1/messages/batch", map[string]any{"messages": msgs})
		var out struct {
			Messages []struct {
				ID    string `json:"id"`
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(body, &out); err != nil || len(out.Messages) != 50 {
			t.Fatalf("batch: %d %s", code, body)
		}
		for i, m := range out.Messages {
			switch {
			case m.Error == nil:
				accepted = append(accepted, ids[i])
			case m.Error.Code == "service_unavailable":
				unavailable++
			default:
				t.Errorf("batch item %d: %s", i, m.Error.Code)
			}
		}
	}
	if conflicts > 0 {
		t.Errorf("%d requests without an idempotency key were answered 409", conflicts)
	}
	recs := fs.awaitRecordsFinal(t, ctx, accepted)
	checkDeliveredOnce(t, recs, tg.delivered(), fs.unrecorded2xx())
	t.Logf("lost storage answers: %d accepted, %d answered 503, %d answers of %d dropped; every accepted message delivered once",
		len(accepted), unavailable, fs.ddb.Stats().Dropped, fs.ddb.Stats().Answers)
}

func TestIntegrationFaultFlakyTarget(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	// Per 100 pushes: 30 answered 503, 5 reset, 2 hung past the request timeout, the rest 200.
	tg := newFaultTarget(t, func(n int64, _ *http.Request) int {
		switch k := n % 100; {
		case k < 30:
			return http.StatusServiceUnavailable
		case k < 35:
			return answerReset
		case k < 37:
			return answerHang
		}
		return http.StatusOK
	})
	ids := fs.acceptBatches(t, ctx, tg.url(), 200)
	start := time.Now()
	recs := fs.awaitRecordsFinal(t, ctx, ids)
	checkDeliveredOnce(t, recs, tg.delivered(), fs.unrecorded2xx())
	attempts := 0
	for _, r := range recs {
		attempts += r.Attempts
	}
	t.Logf("flaky target: 200 accepted, all delivered once in %s, %d attempts, %d pushes received",
		time.Since(start).Round(time.Second), attempts, tg.received.Load())
}

func TestIntegrationFaultTargetDown(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tg := newFaultTarget(t, nil)
	// The target is reached through a proxy that refuses every connection until it comes back.
	down, err := faultproxy.Start(strings.TrimPrefix(tg.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = down.Close() })
	down.Refuse(true)
	msgs := make([]any, 50)
	ids := make([]string, 50)
	for i := range msgs {
		msgs[i], ids[i] = keyed(down.URL()+"/push", fmt.Sprintf("%s-%d", t.Name(), i), i)
	}
	if code, body := fs.post(ctx, "/v1/messages/batch", map[string]any{"messages": msgs}); code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", code, body)
	}
	// Down until every message has failed at least twice and waits for a retry.
	for {
		retrying := 0
		for _, id := range ids {
			if rec, err := fs.records.Get(ctx, id); err == nil && rec.Status == message.Retrying && rec.Attempts >= 2 {
				retrying++
			}
		}
		if retrying == len(ids) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d messages retrying after 2 attempts when the test's time ran out", retrying, len(ids))
		case <-time.After(250 * time.Millisecond):
		}
	}
	down.Refuse(false)
	back := time.Now()
	recs := fs.awaitRecordsFinal(t, ctx, ids)
	checkDeliveredOnce(t, recs, tg.delivered(), fs.unrecorded2xx())
	t.Logf("target down: 50 accepted, each failed at least twice (%d connections refused), all delivered once %s after the target came back",
		down.Stats().Refused, time.Since(back).Round(time.Second))
}

// TestIntegrationFaultHostileTarget: a target whose failures carry a second, unasked-for answer
// (a smuggled 200 after its 503, on a connection it keeps open). Each message is answered that
// way first and 200 on its next attempt; a client that took the smuggled bytes as the next push's
// answer would record a message delivered that its target never accepted.
func TestIntegrationFaultHostileTarget(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	tg := newFaultTarget(t, func(_ int64, r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get(push.HeaderID)
		seen[id]++
		if seen[id] == 1 {
			return answerSmuggle
		}
		return http.StatusOK
	})
	msgs := make([]any, 60)
	ids := make([]string, 60)
	for i := range msgs {
		msgs[i], ids[i] = keyed(tg.url(), fmt.Sprintf("%s-%d", t.Name(), i), i)
	}
	if code, body := fs.post(ctx, "/v1/messages/batch", map[string]any{"messages": msgs}); code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", code, body)
	}
	recs := fs.awaitRecordsFinal(t, ctx, ids)
	checkDeliveredOnce(t, recs, tg.delivered(), fs.unrecorded2xx())
	for id, rec := range recs {
		if rec.Attempts < 2 {
			t.Errorf("message %s recorded %s after %d attempt, but its target had answered it only 503", id, rec.Status, rec.Attempts)
		}
	}
	// net/http reports each unasked answer through the standard logger; the functions route it
	// to their JSON log, so no line of theirs is plain text quoting a target's bytes.
	unsolicited := 0
	for l := range strings.Lines(fs.logs.String()) {
		if strings.Contains(l, "Unsolicited response") {
			unsolicited++
			if !json.Valid([]byte(l)) {
				t.Errorf("a log line is not JSON: %.200s", l)
			}
		}
	}
	t.Logf("hostile target: 60 messages, each first answered 503 with a smuggled 200 behind it, all delivered once, on a later attempt, by their own 200; %d unasked answers logged as JSON", unsolicited)
}

func TestIntegrationFaultDeliverKilled(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	// Slow answers keep pushes in flight when the deliver processes are killed.
	tg := newFaultTarget(t, func(int64, *http.Request) int {
		time.Sleep(200 * time.Millisecond)
		return http.StatusOK
	})
	ids := fs.acceptBatches(t, ctx, tg.url(), 300)
	kills := 0
	for _, at := range []int64{30, 120, 200} {
		if !poll(ctx, 20*time.Millisecond, func() bool { return tg.received.Load() >= at }) {
			t.Fatalf("the target got %d pushes, waiting for %d", tg.received.Load(), at)
		}
		for _, pid := range processesUnder(filepath.Join(fs.buildDir, "DeliverFunction")) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				kills++
			}
		}
	}
	if kills == 0 {
		t.Fatalf("no deliver process found under %s to kill", fs.buildDir)
	}
	start := time.Now()
	recs := fs.awaitRecordsFinal(t, ctx, ids)
	dups := checkDeliveredOnce(t, recs, tg.delivered(), anyDuplicate)
	t.Logf("deliver killed: %d processes killed at 3 points, 300 accepted, all delivered, %d delivered twice (in flight when killed), recovered %s after the last kill",
		kills, dups, time.Since(start).Round(time.Second))
}

func TestIntegrationFaultMalformedRecords(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	good := newFaultTarget(t, nil)
	stale := newFaultTarget(t, nil)

	// The good message is held back in the queue for 5 s, so the bad copies reach the deliver
	// function first.
	m, id := keyed(good.url(), t.Name()+"-good", 1)
	m["delay_seconds"] = 5
	if code, body := fs.post(ctx, "/v1/messages", m); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	client := awstest.SQS(t)
	bodies := []string{
		`not json at all`,
		`{"id":"` + id + `"}`, // the good message's id, no target, no payload
		`{"id":"` + id + `","target":{"url":"` + stale.url() + `"},"payload":{"stale":true},"fingerprint":"0000"}`, // a copy bound to another message
		`{"id":"msg_nope","target":{"url":"` + stale.url() + `"},"payload":{}}`,
	}
	for _, b := range bodies {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(fs.queueURL), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	recs := fs.awaitRecordsFinal(t, ctx, []string{id})
	checkDeliveredOnce(t, recs, good.delivered(), fs.unrecorded2xx())
	if got := good.body(id); !strings.Contains(got, `"user_id":"1"`) {
		t.Errorf("the good message's target got %q, want its own payload", got)
	}
	if n := stale.received.Load(); n != 0 {
		t.Errorf("the stale and malformed copies' target got %d pushes, want none", n)
	}
	// The queue is drained: every malformed copy was acknowledged, none is left to redeliver.
	var left map[string]string
	drained := func() bool {
		attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(fs.queueURL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		left = attrs.Attributes
		return left[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)] == "0" &&
			left[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)] == "0"
	}
	if !poll(ctx, 250*time.Millisecond, drained) {
		t.Fatalf("records left on the queue: %v", left)
	}
	t.Logf("malformed records: %d bad copies put on the queue, all acknowledged", len(bodies))
}

func TestIntegrationFaultQueueOutage(t *testing.T) {
	t.Parallel()
	fs := startFaultStack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tg := newFaultTarget(t, nil)

	// Answers lost after SQS stored the message: the SDK sends again (SQS stores it twice) or
	// gives up (the api answers 503 and the stored copy must not be delivered).
	fs.sqs.DropEvery(3)
	accepted, refused := fs.postKeyed(t, ctx, tg.url(), t.Name()+"-lost", 60, 0)
	fs.sqs.DropEvery(0)
	fs.sqs.Refuse(true)
	var down []map[string]any
	for i := range 20 {
		m, id := keyed(tg.url(), fmt.Sprintf("%s-down-%d", t.Name(), i), i)
		if code, body := fs.post(ctx, "/v1/messages", m); code != http.StatusServiceUnavailable {
			t.Fatalf("POST while the queue is down: %d %s, want 503", code, body)
		}
		down = append(down, m)
		refused = append(refused, id)
	}
	fs.sqs.Refuse(false)
	// The caller retries what was refused, with the same keys: each is then delivered once.
	var retried []string
	for i, m := range down {
		code, body := fs.post(ctx, "/v1/messages", m)
		if code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("retry %d after the outage: %d %s", i, code, body)
		}
		retried = append(retried, message.IDForKey(m["idempotency_key"].(string)))
	}
	recs := fs.awaitRecordsFinal(t, ctx, append(slices.Clone(accepted), retried...))
	got := tg.delivered()
	checkDeliveredOnce(t, recs, got, fs.unrecorded2xx())
	for _, id := range refused {
		if !slices.Contains(retried, id) && got[id] > 0 {
			t.Errorf("message %s was answered 503 and never retried, but delivered %d times", id, got[id])
		}
	}
	// What was refused and not retried leaves no record behind that says it will be delivered.
	for _, id := range refused {
		if slices.Contains(retried, id) {
			continue
		}
		rec, err := fs.records.Get(ctx, id)
		if err == nil && !rec.Status.Final() {
			t.Errorf("message %s was answered 503, yet its record says %s", id, rec.Status)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	t.Logf("queue outage: %d accepted and %d refused while SQS answers were lost (%d of %d dropped), 20 refused while it was down and delivered once when retried",
		len(accepted), len(refused)-20, fs.sqs.Stats().Dropped, fs.sqs.Stats().Answers)
}
