package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/local/eventbus"
	"github.com/pushfn/pushfn/shared/metrics"
)

var now = time.Date(2026, 12, 2, 17, 0, 30, 0, time.UTC)

// invocations writes, as the functions do, the documents of a known run: the api accepts 5
// messages and refuses 2; two deliver invocations, one at now-1s (3 delivered at 10, 20 and
// 30 ms, one retried at 400 ms) and one at now-20s (one failed at 5 ms, one delivered at 2 ms
// to an endpoint), with a lease conflict.
func invocations(t *testing.T, w io.Writer) {
	t.Helper()
	api := metrics.NewWriter(w, "ApiFunction").Invocation()
	api.Add(metrics.MessagesAccepted, 5)
	api.Add(metrics.MessagesReplayed, 0)
	api.AddBy(metrics.MessagesRefused, metrics.DimCode, "validation_failed", 1)
	api.AddBy(metrics.MessagesRefused, metrics.DimCode, "endpoint_not_found", 1)
	if err := api.Flush(now.Add(-30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	deliver := func(at time.Time, batch int, conflicts float64, sends []struct {
		host, ep, outcome string
		took              time.Duration
	}) {
		s := metrics.NewWriter(w, "DeliverFunction").Invocation()
		s.Add(metrics.BatchSize, float64(batch))
		s.Add(metrics.RecordsNotStarted, 0)
		s.Add(metrics.LeaseConflicts, conflicts)
		for _, x := range sends {
			s.Observe(metrics.AttemptLatency, x.took)
			s.AddBy(metrics.Deliveries, metrics.DimOutcome, x.outcome, 1)
			s.Tally(metrics.PropTargetHosts, x.host, x.outcome, 1)
			if x.ep != "" {
				s.Tally(metrics.PropEndpoints, x.ep, x.outcome, 1)
			}
		}
		if err := s.Flush(at); err != nil {
			t.Fatal(err)
		}
	}
	type send = struct {
		host, ep, outcome string
		took              time.Duration
	}
	deliver(now.Add(-time.Second), 4, 0, []send{
		{"a.example", "", "delivered", 10 * time.Millisecond}, {"a.example", "", "delivered", 20 * time.Millisecond},
		{"b.example:8443", "", "delivered", 30 * time.Millisecond}, {"b.example:8443", "", "retrying", 400 * time.Millisecond},
	})
	deliver(now.Add(-20*time.Second), 3, 1, []send{
		{"c.example", "", "failed", 5 * time.Millisecond}, {"a.example", "ep_1", "delivered", 2 * time.Millisecond},
	})
}

// A Board tapping the functions' output adds up their documents, skips their log lines, and
// passes everything through.
func TestBoardReadsTheDocuments(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	invocations(t, &out)
	logged := `{"level":"INFO","msg":"delivery","message_id":"msg_1"}` + "\n" + "START RequestId: 1 Version: $LATEST\n" + out.String()

	for _, chunk := range []int{len(logged), 1, 7, 100} {
		var through bytes.Buffer
		b := &Board{Now: func() time.Time { return now }}
		tap := b.Tap(&through)
		for rest := logged; rest != ""; {
			n := min(chunk, len(rest))
			if _, err := tap.Write([]byte(rest[:n])); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if through.String() != logged {
			t.Fatalf("chunks of %d: the tap passed through %q, want the output unchanged", chunk, through.String())
		}
		s := b.Snapshot(context.Background())
		want := Totals{
			Accepted: 5, Replayed: 0, Refused: 2, RefusedByCode: map[string]int64{"validation_failed": 1, "endpoint_not_found": 1},
			Deliveries: map[string]int64{"delivered": 4, "retrying": 1, "failed": 1, "expired": 0},
			Attempts:   6, Batches: 2, Records: 7, RecordsNotStarted: 0, LeaseConflicts: 1, Documents: 9, Unreadable: 0,
		}
		if !reflect.DeepEqual(s.Totals, want) {
			t.Errorf("chunks of %d: totals %+v, want %+v", chunk, s.Totals, want)
		}
		// Latencies 2, 5, 10, 20, 30, 400 ms: nearest rank.
		if l := (Latency{Count: 6, P50: 10, P90: 400, P99: 400, Min: 2, Max: 400, Mean: 77.8}); s.Latency != l {
			t.Errorf("chunks of %d: latency %+v, want %+v", chunk, s.Latency, l)
		}
		hosts := []Row{
			{Key: "a.example", Outcomes: map[string]int64{"delivered": 3, "retrying": 0, "failed": 0, "expired": 0}, Total: 3},
			{Key: "b.example:8443", Outcomes: map[string]int64{"delivered": 1, "retrying": 1, "failed": 0, "expired": 0}, Total: 2},
			{Key: "c.example", Outcomes: map[string]int64{"delivered": 0, "retrying": 0, "failed": 1, "expired": 0}, Total: 1},
		}
		if !reflect.DeepEqual(s.TargetHosts, hosts) {
			t.Errorf("chunks of %d: target hosts %+v, want %+v", chunk, s.TargetHosts, hosts)
		}
		eps := []Row{{Key: "ep_1", Outcomes: map[string]int64{"delivered": 1, "retrying": 0, "failed": 0, "expired": 0}, Total: 1}}
		if !reflect.DeepEqual(s.Endpoints, eps) {
			t.Errorf("chunks of %d: endpoints %+v, want %+v", chunk, s.Endpoints, eps)
		}
		// Four deliveries a second ago, two 20 s ago: 4 in the last 10 s.
		if s.Rate.PerSecond != 0.4 || s.Rate.WindowSeconds != 10 || len(s.Rate.Series) != 60 {
			t.Errorf("chunks of %d: rate %v/s over %d s, %d points; want 0.4 over 10, 60 points", chunk, s.Rate.PerSecond, s.Rate.WindowSeconds, len(s.Rate.Series))
		}
		last := s.Rate.Series[len(s.Rate.Series)-1]
		if at := s.Rate.Series[58]; at.Time != now.Unix()-1 || at.Outcomes["delivered"] != 3 || at.Outcomes["retrying"] != 1 || last.Time != now.Unix() {
			t.Errorf("chunks of %d: the series ends %+v, %+v; want 3 delivered and 1 retrying a second before now", chunk, at, last)
		}
		if s.Messages != nil || s.Events != nil {
			t.Errorf("chunks of %d: messages %v and events %v without a table or a bus", chunk, s.Messages, s.Events)
		}
	}
}

// Lines that are no documents are skipped; a document that cannot be read is counted as such.
func TestParseDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		line        string
		notDocument bool // errNotDocument; else an error for the member named in want
		want        string
	}{
		{name: "a log line", line: `{"level":"INFO","msg":"delivery"}`, notDocument: true},
		{name: "a report line", line: `REPORT RequestId: 1`, notDocument: true},
		{name: "another namespace", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"other"}]},"X":1}`, notDocument: true},
		{name: "broken JSON", line: `{"_aws":`, notDocument: true},
		{name: "a count that is no number", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"BatchSize":"ten"}`, want: "metric BatchSize"},
		{name: "latency arrays of different lengths", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"AttemptLatency":{"Values":[1,2],"Counts":[1]}}`, want: "metric AttemptLatency"},
		{name: "a tally that is no object", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"BatchSize":1,"target_hosts":[1]}`, want: "property target_hosts"},
		{name: "a count out of range", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"BatchSize":1e300}`, want: "metric BatchSize"},
		{name: "a latency count that is not positive", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"AttemptLatency":{"Values":[1],"Counts":[-1],"Count":-1}}`, want: "metric AttemptLatency"},
		{name: "a tally out of range", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"BatchSize":1,"endpoints":{"ep_1":{"failed":-1e200}}}`, want: "property endpoints"},
		{name: "a dimension that is no string", line: `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"outcome":1,"Deliveries":1}`, want: "dimension outcome"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseDocument([]byte(tt.line))
			if got := errors.Is(err, errNotDocument); got != tt.notDocument || err == nil {
				t.Fatalf("parseDocument: %v, want errNotDocument %v", err, tt.notDocument)
			}
			if !tt.notDocument && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseDocument: %v, want it to name %s", err, tt.want)
			}
			b := &Board{}
			b.Read([]byte(tt.line))
			s := b.Snapshot(context.Background())
			unreadable := 1
			if tt.notDocument {
				unreadable = 0
			}
			if s.Totals.Unreadable != unreadable || s.Totals.Documents != 0 {
				t.Errorf("unreadable %d, documents %d; want %d and 0", s.Totals.Unreadable, s.Totals.Documents, unreadable)
			}
		})
	}
}

// A line longer than the tap keeps is passed through and skipped, and the next line is read.
func TestTapSkipsALineTooLong(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	invocations(t, &out)
	long := `{"_aws":` + strings.Repeat("x", maxLine) + "\n"
	b := &Board{}
	var through bytes.Buffer
	tap := b.Tap(&through)
	for _, part := range []string{long[:maxLine/2], long[maxLine/2:], out.String()} {
		if _, err := tap.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.Snapshot(context.Background()); s.Totals.Documents != 9 || s.Totals.Unreadable != 0 {
		t.Errorf("documents %d, unreadable %d; want 9 and 0", s.Totals.Documents, s.Totals.Unreadable)
	}
	if through.Len() != len(long)+out.Len() {
		t.Errorf("passed through %d bytes, want %d", through.Len(), len(long)+out.Len())
	}
}

// The tap returns what the writer it wraps returns.
func TestTapReturnsTheWriteError(t *testing.T) {
	t.Parallel()
	broken := errors.New("broken pipe")
	tap := (&Board{}).Tap(failingWriter{broken})
	if _, err := tap.Write([]byte("line\n")); !errors.Is(err, broken) {
		t.Errorf("Write: %v, want %v", err, broken)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// Several streams write to one Board at once, as the functions' processes do.
func TestBoardIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	invocations(t, &out)
	b := &Board{Events: &eventbus.Server{}}
	var wg sync.WaitGroup
	for range 8 {
		tap := b.Tap(io.Discard)
		wg.Go(func() {
			for range 10 {
				_, _ = tap.Write(out.Bytes())
			}
		})
		wg.Go(func() { _ = b.Snapshot(context.Background()) })
	}
	wg.Wait()
	if s := b.Snapshot(context.Background()); s.Totals.Documents != 8*10*9 || s.Totals.Accepted != 8*10*5 {
		t.Errorf("documents %d, accepted %d; want %d and %d", s.Totals.Documents, s.Totals.Accepted, 8*10*9, 8*10*5)
	}
}

// fakeScan serves pages of items, and counts its calls.
type fakeScan struct {
	pages [][]map[string]types.AttributeValue
	err   error
	mu    sync.Mutex
	calls int
}

func (f *fakeScan) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	page := 0
	if k, ok := in.ExclusiveStartKey["page"].(*types.AttributeValueMemberN); ok {
		page = int(k.Value[0] - '0')
	}
	out := &dynamodb.ScanOutput{Items: f.pages[page]}
	if page+1 < len(f.pages) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{"page": &types.AttributeValueMemberN{Value: string(rune('0' + page + 1))}}
	}
	return out, nil
}

func item(id, status string) map[string]types.AttributeValue {
	it := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
	if status != "" {
		it["status"] = &types.AttributeValueMemberS{Value: status}
	}
	return it
}

const (
	msg1 = "msg_06h3fpncs68p20qr5p33ye706m"
	msg2 = "msg_06h3fpncs4apwc25e9zdwpd7sm"
	dlv1 = "dlv_06h3fpncs4apwc25e9zdwpd7sm"
)

func TestTableCount(t *testing.T) {
	t.Parallel()
	pages := [][]map[string]types.AttributeValue{
		{item(msg1, "delivered"), item(msg2, "failed"), item("ep_06h3fpnced1mwqjze10gx2y28", "")},
		{item(dlv1, "delivered"), item("rcv_06h3fpnced1mwqjze10gx2y28", "running")},
		{item(msg1, "retrying")},
	}
	tests := []struct {
		name     string
		maxItems int
		want     States
	}{
		{name: "every page", want: States{
			Messages:   map[string]int{"accepted": 0, "delivering": 0, "retrying": 1, "delivered": 1, "failed": 1, "expired": 0},
			Deliveries: map[string]int{"delivered": 1}, Scanned: 6,
		}},
		{name: "stopped at MaxItems", maxItems: 4, want: States{
			Messages:   map[string]int{"accepted": 0, "delivering": 0, "retrying": 0, "delivered": 1, "failed": 1, "expired": 0},
			Deliveries: map[string]int{"delivered": 1}, Scanned: 5, Partial: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := &Table{API: &fakeScan{pages: pages}, Name: "t", MaxItems: tt.maxItems}
			got, err := tb.Count(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Count: %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A count that fails is reported with the table's name; the page keeps the last good count and
// says why the new one failed. Counts are no more frequent than TableEvery.
func TestBoardCountsTheTableAtMostEveryTableEvery(t *testing.T) {
	t.Parallel()
	scan := &fakeScan{pages: [][]map[string]types.AttributeValue{{item(msg1, "delivered")}}}
	clock := now
	b := &Board{Table: &Table{API: scan, Name: "the-table"}, TableEvery: 2 * time.Second, Now: func() time.Time { return clock }}
	first := b.Snapshot(context.Background())
	if first.Messages == nil || first.Messages.Messages["delivered"] != 1 || !first.Messages.CountedAt.Equal(now) {
		t.Fatalf("first snapshot: %+v", first.Messages)
	}
	clock = now.Add(time.Second)
	b.Snapshot(context.Background())
	if scan.calls != 1 {
		t.Errorf("%d scans a second apart, want 1", scan.calls)
	}
	down := errors.New("connection refused")
	scan.mu.Lock()
	scan.err = down
	scan.mu.Unlock()
	clock = now.Add(3 * time.Second)
	s := b.Snapshot(context.Background())
	if scan.calls != 2 || s.Messages.Messages["delivered"] != 1 || !s.Messages.CountedAt.Equal(now) || !strings.Contains(s.Messages.Error, "the-table") {
		t.Errorf("after a failed count: %d scans, %+v", scan.calls, s.Messages)
	}
	if _, err := b.Table.Count(context.Background()); !errors.Is(err, down) {
		t.Errorf("Count: %v, want %v", err, down)
	}
}

// The events of the bus: the total, a count by detail type, the last RecentEvents newest first.
func TestBoardListsTheEvents(t *testing.T) {
	t.Parallel()
	bus := &eventbus.Server{Keep: 30, Now: func() time.Time { return now }}
	srv := httptest.NewServer(bus)
	t.Cleanup(srv.Close)
	for i := range 25 {
		typ := "pushfn.delivery.failed"
		if i%5 == 0 {
			typ = "pushfn.endpoint.disabled"
		}
		body := fmt.Sprintf(`{"Entries":[{"Source":"pushfn","DetailType":%q,"Detail":"{\"n\":%d}"}]}`, typ, i+1)
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", "AWSEvents.PutEvents")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("PutEvents: %d", res.StatusCode)
		}
	}
	s := (&Board{Events: bus}).Snapshot(context.Background())
	if s.Events == nil || s.Events.Total != 25 || s.Events.ByDetailType["pushfn.delivery.failed"] != 20 || s.Events.ByDetailType["pushfn.endpoint.disabled"] != 5 {
		t.Fatalf("events %+v", s.Events)
	}
	if len(s.Events.Recent) != RecentEvents || string(s.Events.Recent[0].Detail) != `{"n":25}` {
		t.Errorf("%d recent, the newest %s; want %d, the 25th", len(s.Events.Recent), s.Events.Recent[0].Detail, RecentEvents)
	}
}

// The handler serves the page, its script and style sheet, and the JSON; the page reaches
// nothing outside the server.
func TestHandler(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	invocations(t, &out)
	b := &Board{Now: func() time.Time { return now }}
	_, _ = b.Tap(io.Discard).Write(out.Bytes())
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(srv.Close)
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, tt := range []struct{ path, contentType, contains string }{
		{"/", "text/html; charset=utf-8", `<script src="status.js">`},
		{"/status.js", "text/javascript; charset=utf-8", "status.json"},
		{"/status.css", "text/css; charset=utf-8", "--delivered"},
		{"/status.json", "application/json", `"accepted":5`},
	} {
		res, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != tt.contentType || !bytes.Contains(body, []byte(tt.contains)) {
			t.Errorf("GET %s: %d %s, want 200 %s containing %s", tt.path, res.StatusCode, res.Header.Get("Content-Type"), tt.contentType, tt.contains)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", tt.path, res.Header.Get("Cache-Control"))
		}
		// The SVG namespace is a name, not a request.
		for _, u := range external.FindAllString(strings.ReplaceAll(string(body), "http://www.w3.org/2000/svg", ""), -1) {
			t.Errorf("GET %s: refers to %s: the page must work offline", tt.path, u)
		}
		if tt.path == "/status.json" {
			var s Snapshot
			if err := json.Unmarshal(body, &s); err != nil || s.Totals.Accepted != 5 {
				t.Errorf("GET /status.json: %v %+v", err, s.Totals)
			}
		}
	}
	res, err := http.Post(srv.URL+"/status.json", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status.json: %d, want 405", res.StatusCode)
	}
}

// Whatever the lines, reading them never panics, and every line passes through.
func FuzzTap(f *testing.F) {
	var out bytes.Buffer
	w := metrics.NewWriter(&out, "DeliverFunction").Invocation()
	w.Add(metrics.BatchSize, 1)
	w.Observe(metrics.AttemptLatency, time.Millisecond)
	w.Tally(metrics.PropTargetHosts, "a.example", "delivered", 1)
	_ = w.Flush(now)
	f.Add(out.Bytes(), uint8(3))
	f.Add([]byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"pushfn"}]},"AttemptLatency":{"Values":[1e308,-5],"Counts":[1e308,-1e308],"Count":1}}`+"\n"), uint8(1))
	f.Add([]byte("\n\n{\n"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var through bytes.Buffer
		b := &Board{Now: func() time.Time { return now }}
		tap := b.Tap(&through)
		n := int(chunk) + 1
		for rest := data; len(rest) > 0; {
			k := min(n, len(rest))
			if _, err := tap.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if !bytes.Equal(through.Bytes(), data) {
			t.Fatal("the tap changed what it passed through")
		}
		s := b.Snapshot(context.Background())
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("the snapshot cannot be served: %v", err)
		}
	})
}
