package main

import (
	"bytes"
	"context"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/awsproxy"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
)

// TestIntegrationCostReadme runs the README's `pushfn cost` command, scaled down to 300
// messages, through the real function binaries and the emulators. It checks that the AWS
// requests each function reported in its AWSRequests metrics are, operation by operation, the
// requests the emulators served it (counted by a proxy in front of them; pushfn cost's own
// calls, which set up the table and queues and poll the records, go around the proxy and are
// not counted), that the counts are the workload's (one record write per message, one SQS send
// per ten, two record writes per attempt), and that the report has the rows the README shows.
func TestIntegrationCostReadme(t *testing.T) {
	t.Parallel()
	awstest.Config(t) // skips unless PUSHFN_INTEGRATION=1, fails when the emulators are down
	args := readmeCostArgs(t)
	dir := t.TempDir()
	args = append(args, "--messages", "300", "--build-dir", filepath.Join(dir, "build"), "--log", filepath.Join(dir, "functions.log"))
	o, err := parseCostFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("the README's flags %q: %v", args, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	m, err := measure(ctx, o, &progress)
	if err != nil {
		t.Fatalf("measure: %v\n%s", err, progress.String())
	}

	if bad := m.mismatches(); len(bad) > 0 {
		t.Errorf("the functions reported other AWS requests than the emulators served: %v", bad)
	}
	services := map[string][2]int{} // service: reported, served
	for _, fn := range costFunctions {
		for op, n := range m.reported[fn] {
			s := services[strings.Split(op, ".")[0]]
			s[0] += n
			services[strings.Split(op, ".")[0]] = s
		}
		for op, c := range m.served[fn] {
			s := services[strings.Split(op, ".")[0]]
			s[1] += c.Requests
			services[strings.Split(op, ".")[0]] = s
		}
	}
	for service, n := range services {
		if n[0] != n[1] {
			t.Errorf("%s: the functions reported %d requests, the emulator served %d", service, n[0], n[1])
		}
	}
	t.Logf("requests by service, reported and served: %v", services)

	const messages = 300
	if m.statuses[message.Delivered] != messages || m.retried != 15 || m.attempts != messages+15 {
		t.Errorf("%v records, %d retried, %d attempts; want %d delivered, 15 retried, %d attempts", m.statuses, m.retried, m.attempts, messages, messages+15)
	}
	api, deliver := m.reported["ApiFunction"], m.reported[deliverFunction]
	// At least: the SDK retries a call DynamoDB Local or fauxqs was too busy to answer, and each
	// attempt counts.
	if api["DynamoDB.PutItem"] < messages || api["SQS.SendMessageBatch"] < messages/10 {
		t.Errorf("ApiFunction reported %v; want at least %d DynamoDB.PutItem (one a message) and %d SQS.SendMessageBatch (one per ten)", api, messages, messages/10)
	}
	if n := deliver["DynamoDB.UpdateItem"]; n < 2*int(m.attempts) {
		t.Errorf("DeliverFunction reported %d DynamoDB.UpdateItem, want at least 2 a attempt (claim, result): %d", n, 2*m.attempts)
	}
	if m.served[esmCaller]["SQS.ReceiveMessage"].Requests == 0 || m.served[esmCaller]["SQS.DeleteMessageBatch"].Requests == 0 {
		t.Errorf("the event source mapping's requests %v: want receives and deletes", m.served[esmCaller])
	}
	for _, f := range m.usage.Functions {
		if f.Invocations == 0 || f.Billed <= 0 || f.MemoryMB == 0 {
			t.Errorf("%s: %+v, want invocations with a billed duration and a memory size", f.Name, f)
		}
	}

	est, err := costEstimate(m, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m.print(&out, o, est)
	t.Logf("pushfn cost --messages 300:\n%s", out.String())
	if got, want := costRows(out.String()), costRows(readmeCostOutput(t)); !slices.Equal(got, want) {
		t.Errorf("the report's cost rows are\n%q\nthe README shows\n%q", got, want)
	}
}

// readmeCostArgs returns the arguments of the README's `go run ./cmd/pushfn cost` command.
func readmeCostArgs(t *testing.T) []string {
	t.Helper()
	for _, c := range readmeCommands(readReadme(t)) {
		if c.section != "Cost" {
			continue
		}
		if rest, ok := strings.CutPrefix(c.head(), "go run ./cmd/pushfn cost"); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("the README's Cost section has no go run ./cmd/pushfn cost command")
	return nil
}

// readmeCostOutput returns the output the README's Cost section shows: its first text block.
func readmeCostOutput(t *testing.T) string {
	t.Helper()
	_, section, ok := strings.Cut(readReadme(t), "\n## Cost\n")
	if !ok {
		t.Fatal("README has no Cost section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```text\n")
	if !ok {
		t.Fatal("the README's Cost section shows no output")
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// columns separates the columns of a report's table.
var columns = regexp.MustCompile(`\s{2,}`)

// costRows returns the names of the rows of a report's cost table.
func costRows(report string) []string {
	_, table, _ := strings.Cut(report, "cost per million pushes")
	table, _, _ = strings.Cut(table, "\nprovisioned:")
	var rows []string
	for line := range strings.Lines(table) {
		if name := columns.Split(strings.TrimSpace(line), 2)[0]; strings.HasPrefix(line, "  ") && name != "" {
			rows = append(rows, name)
		}
	}
	return rows
}

// The flags are checked, each bad one named, before anything runs.
func TestCostFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		bad  string // a word the error names; "" when the flags are good
	}{
		{nil, ""},
		{[]string{"--messages", "300", "--retry-share", "0", "--payload-bytes", "32", "--batch", "1"}, ""},
		{[]string{"--messages", "0"}, "--messages"},
		{[]string{"--retry-share", "1.5"}, "--retry-share"},
		{[]string{"--retry-share", "-0.1"}, "--retry-share"},
		{[]string{"--payload-bytes", "31"}, "--payload-bytes"},
		{[]string{"--payload-bytes", "262145"}, "--payload-bytes"},
		{[]string{"--batch", "501"}, "--batch"},
		{[]string{"--utilisation", "0"}, "--utilisation"},
		{[]string{"--retry-base-delay", "0s"}, "--retry-base-delay"},
		{[]string{"extra"}, `unexpected "extra"`},
	} {
		var stderr bytes.Buffer
		o, err := parseCostFlags(tc.args, &stderr)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%q: %v\n%s", tc.args, err, stderr.String())
		case tc.bad == "" && (o.messages < 1 || o.batch < 1 || o.utilisation <= 0):
			t.Errorf("%q: options %+v", tc.args, o)
		case tc.bad != "" && (err == nil || !strings.Contains(stderr.String(), tc.bad)):
			t.Errorf("%q: %v, stderr %q; want an error naming %s", tc.args, err, stderr.String(), tc.bad)
		}
	}
}

func FuzzCostFlags(f *testing.F) {
	f.Add("300", "0.05", "256", "500")
	f.Add("-1", "2", "0", "0")
	f.Fuzz(func(t *testing.T, messages, share, payload, batch string) {
		o, err := parseCostFlags([]string{"--messages", messages, "--retry-share", share, "--payload-bytes", payload, "--batch", batch}, io.Discard)
		if err != nil {
			return
		}
		if o.messages < 1 || !(o.retryShare >= 0 && o.retryShare <= 1) || o.payloadBytes < minPayloadBytes || o.batch < 1 || o.batch > maxBatch {
			t.Errorf("accepted %+v", o)
		}
	})
}

// The functions' output is counted line by line whatever the pieces it comes in: only EMF
// documents with AWSRequests count, each under its function and operation.
func TestEMFCounter(t *testing.T) {
	t.Parallel()
	doc := func(fn, op string, n int) string {
		return `{"AWSRequests":` + strconv.Itoa(n) + `,"_aws":{"CloudWatchMetrics":[{"Namespace":"pushfn","Dimensions":[["service","function","operation"]],"Metrics":[{"Name":"AWSRequests","Unit":"Count"}]}],"Timestamp":1},"function":"` + fn + `","operation":"` + op + `","service":"pushfn"}` + "\n"
	}
	out := doc("ApiFunction", "DynamoDB.PutItem", 2) +
		`{"level":"INFO","msg":"request","AWSRequests":5}` + "\n" + // a log line, not a document
		doc("DeliverFunction", "DynamoDB.UpdateItem", 3) +
		`{"Deliveries":1,"_aws":{},"function":"DeliverFunction","outcome":"delivered"}` + "\n" +
		doc("ApiFunction", "DynamoDB.PutItem", 1) +
		"not json AWSRequests\n" +
		doc("ApiFunction", "SQS.SendMessageBatch", 1)
	for _, size := range []int{1, 7, 64, len(out)} {
		var log bytes.Buffer
		e := &emfCounter{w: &log, counts: map[string]map[string]int{}}
		for rest := out; rest != ""; {
			n := min(size, len(rest))
			if _, err := e.Write([]byte(rest[:n])); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		want := map[string]map[string]int{
			"ApiFunction":     {"DynamoDB.PutItem": 3, "SQS.SendMessageBatch": 1},
			"DeliverFunction": {"DynamoDB.UpdateItem": 3},
		}
		got := e.snapshot()
		if len(got) != len(want) || !maps.Equal(got["ApiFunction"], want["ApiFunction"]) || !maps.Equal(got["DeliverFunction"], want["DeliverFunction"]) {
			t.Errorf("written in pieces of %d: %v, want %v", size, got, want)
		}
		if log.String() != out {
			t.Errorf("written in pieces of %d: the log differs from the output", size)
		}
	}
}

func FuzzEMFCounter(f *testing.F) {
	f.Add([]byte(`{"AWSRequests":2,"_aws":{},"function":"f","operation":"SQS.SendMessage"}` + "\n"))
	f.Add([]byte("{\"AWSRequests\":-1,\"_aws\":{}}\n\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		var log bytes.Buffer
		e := &emfCounter{w: &log, counts: map[string]map[string]int{}}
		if n, err := e.Write(out); n != len(out) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if !bytes.Equal(log.Bytes(), out) {
			t.Error("the log differs from the output")
		}
	})
}

// mismatches names every function and operation whose counts differ, and nothing else.
func TestMismatches(t *testing.T) {
	t.Parallel()
	m := &measurement{
		reported: map[string]map[string]int{"ApiFunction": {"DynamoDB.PutItem": 3, "SQS.SendMessageBatch": 1}, deliverFunction: {"DynamoDB.UpdateItem": 2}},
		served: map[string]map[string]awsproxy.Count{
			"ApiFunction":   {"DynamoDB.PutItem": {Requests: 3}, "SQS.SendMessageBatch": {Requests: 2}},
			deliverFunction: {"DynamoDB.UpdateItem": {Requests: 2}, "SQS.ChangeMessageVisibilityBatch": {Requests: 1}},
			esmCaller:       {"SQS.ReceiveMessage": {Requests: 9}},
		},
	}
	want := []string{"ApiFunction SQS.SendMessageBatch: reported 1, served 2", "DeliverFunction SQS.ChangeMessageVisibilityBatch: reported 0, served 1"}
	if got := m.mismatches(); !slices.Equal(got, want) {
		t.Errorf("mismatches %q, want %q", got, want)
	}
}

// The requests served become billed units: SQS by 64 KiB chunk, DynamoDB writes by KB of item
// and once more per index an item is in, reads one each; the bus's events and the records'
// bytes pass through.
func TestUsageOf(t *testing.T) {
	t.Parallel()
	served := map[string]map[string]awsproxy.Count{
		"ApiFunction":   {"DynamoDB.PutItem": {Requests: 10}, "SQS.SendMessageBatch": {Requests: 1, Chunks64K: 2}, "DynamoDB.GetItem": {Requests: 3}},
		deliverFunction: {"DynamoDB.UpdateItem": {Requests: 20}, "DynamoDB.Query": {Requests: 1}},
		esmCaller:       {"SQS.ReceiveMessage": {Requests: 4, Chunks64K: 4}},
	}
	for _, tc := range []struct {
		name          string
		items         records
		writes, bytes float64
	}{
		{"small items in no index", records{statuses: map[message.Status]int{message.Delivered: 10}, meanBytes: 500}, 30, 500},
		{"items of 1.5 KB", records{statuses: map[message.Status]int{message.Delivered: 10}, meanBytes: 1536}, 60, 1536},
		{"half the items in an index", records{statuses: map[message.Status]int{message.Delivered: 10}, meanBytes: 500, meanIndexes: 0.5}, 45, 750},
	} {
		u := usageOf(served, tc.items, nil, 7)
		if u.Pushes != 10 || u.SQSRequests != 6 || u.EventBridgeEvents != 7 || u.ReadUnits != 4 || u.WriteUnits != tc.writes || u.ItemBytes != tc.bytes {
			t.Errorf("%s: %+v; want 10 pushes, 6 SQS requests, 7 events, 4 read units, %v write units, %v bytes", tc.name, u, tc.writes, tc.bytes)
		}
	}
}
