package opevent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/pushfn/pushfn/shared/config"
)

// fakeBus records PutEvents calls. fail decides, for the n-th put (1-based) of an entry whose
// detail is detail, an error code; "" accepts it. callErr fails whole calls.
type fakeBus struct {
	mu      sync.Mutex
	calls   [][]types.PutEventsRequestEntry
	puts    map[string]int // detail → times put
	fail    func(detail string, n int) string
	callErr error
}

func (f *fakeBus) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in.Entries)
	if f.callErr != nil {
		return nil, f.callErr
	}
	if f.puts == nil {
		f.puts = map[string]int{}
	}
	out := &eventbridge.PutEventsOutput{}
	for i, e := range in.Entries {
		d := aws.ToString(e.Detail)
		f.puts[d]++
		if f.fail != nil {
			if code := f.fail(d, f.puts[d]); code != "" {
				out.FailedEntryCount++
				out.Entries = append(out.Entries, types.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("try later")})
				continue
			}
		}
		out.Entries = append(out.Entries, types.PutEventsResultEntry{EventId: aws.String(fmt.Sprintf("ev-%d-%d", len(f.calls), i))})
	}
	return out, nil
}

func (f *fakeBus) callSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sizes []int
	for _, c := range f.calls {
		sizes = append(sizes, len(c))
	}
	return sizes
}

type failure struct{ N int }

func publishN(b *Batcher, n int) {
	for i := range n {
		b.Publish(Event{DetailType: DeliveryFailed, Detail: map[string]any{"n": i}, Time: time.Unix(1_700_000_000, 0)})
	}
}

func TestFlushSendsTenEntriesPerCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		events int
		calls  []int // entries per call, in any order
	}{
		{events: 0, calls: nil},
		{events: 1, calls: []int{1}},
		{events: 10, calls: []int{10}},
		{events: 25, calls: []int{10, 10, 5}},
		{events: 100, calls: []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.events), func(t *testing.T) {
			t.Parallel()
			bus := &fakeBus{}
			b := New(bus, "ops", nil)
			publishN(b, tt.events)
			b.Flush(context.Background())
			sizes := bus.callSizes()
			count := map[int]int{}
			for _, s := range sizes {
				count[s]++
			}
			want := map[int]int{}
			for _, s := range tt.calls {
				want[s]++
			}
			if fmt.Sprint(count) != fmt.Sprint(want) {
				t.Fatalf("calls of %v entries, want %v", sizes, tt.calls)
			}
			seen := map[string]bool{}
			for _, c := range bus.calls {
				for _, e := range c {
					if aws.ToString(e.Source) != "pushfn" || aws.ToString(e.EventBusName) != "ops" || aws.ToString(e.DetailType) != DeliveryFailed ||
						!aws.ToTime(e.Time).Equal(time.Unix(1_700_000_000, 0)) {
						t.Errorf("entry %+v: want source pushfn, bus ops, detail type %s and the event's time", e, DeliveryFailed)
					}
					seen[aws.ToString(e.Detail)] = true
				}
			}
			for i := range tt.events {
				if d := fmt.Sprintf(`{"n":%d}`, i); !seen[d] {
					t.Errorf("event %s was not sent", d)
				}
			}
			if st := b.Stats(); st.Published != int64(tt.events) || st.Sent != int64(tt.events) || st.Failed != 0 || st.Dropped != 0 {
				t.Errorf("stats %+v, want %d published and sent", st, tt.events)
			}
			b.Flush(context.Background())
			if len(bus.callSizes()) != len(sizes) {
				t.Error("a second flush sent the events again")
			}
		})
	}
}

// Entries EventBridge fails (FailedEntryCount) are put again, up to Tries puts; those failed on
// every try are logged and counted, and the flush returns all the same.
func TestFlushRetriesFailedEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fail       func(detail string, n int) string
		wantSent   int64
		wantFailed int64
		wantCalls  int
		wantLogged int // "not sent" lines
	}{
		{name: "every entry fails once", fail: func(_ string, n int) string {
			return map[bool]string{true: "ThrottlingException"}[n == 1]
		}, wantSent: 5, wantCalls: 2},
		{name: "one entry fails twice", fail: func(d string, n int) string {
			return map[bool]string{true: "InternalException"}[d == `{"n":3}` && n <= 2]
		}, wantSent: 5, wantCalls: 3},
		{name: "one entry always fails", fail: func(d string, _ int) string {
			return map[bool]string{true: "InternalException"}[d == `{"n":3}`]
		}, wantSent: 4, wantFailed: 1, wantCalls: Tries, wantLogged: 1},
		{name: "every entry always fails", fail: func(string, int) string { return "InternalException" },
			wantFailed: 5, wantCalls: Tries, wantLogged: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bus := &fakeBus{fail: tt.fail}
			var logs bytes.Buffer
			b := New(bus, "ops", slog.New(slog.NewJSONHandler(&logs, nil)))
			publishN(b, 5)
			b.Flush(context.Background())
			if st := b.Stats(); st.Sent != tt.wantSent || st.Failed != tt.wantFailed {
				t.Errorf("stats %+v, want %d sent and %d failed", st, tt.wantSent, tt.wantFailed)
			}
			if n := len(bus.callSizes()); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
			if n := strings.Count(logs.String(), "operational event not sent: EventBridge failed it"); n != tt.wantLogged {
				t.Errorf("%d lines for failed entries, want %d:\n%s", n, tt.wantLogged, logs.String())
			}
			if tt.wantLogged > 0 && !strings.Contains(logs.String(), `"error_code":"InternalException"`) {
				t.Errorf("the failed entries' lines do not name EventBridge's error code:\n%s", logs.String())
			}
		})
	}
}

// A call that fails as a whole (after the SDK's own retries) is logged and counted, not tried
// again by the flush, and never reaches the caller.
func TestFlushLogsAFailedCall(t *testing.T) {
	t.Parallel()
	bus := &fakeBus{callErr: errors.New("connection refused")}
	var logs bytes.Buffer
	b := New(bus, "ops", slog.New(slog.NewJSONHandler(&logs, nil)))
	publishN(b, 12)
	b.Flush(context.Background())
	if st := b.Stats(); st.Failed != 12 || st.Sent != 0 {
		t.Errorf("stats %+v, want 12 failed", st)
	}
	if n := len(bus.callSizes()); n != 2 {
		t.Errorf("%d calls, want 2 (10 and 2 entries, each once)", n)
	}
	if strings.Count(logs.String(), "operational events not sent") != 2 || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("logs %s, want one line per failed call with its error", logs.String())
	}
}

// A detail that does not encode as a JSON object is refused at the flush, not sent; the others
// are.
func TestFlushRefusesDetailsThatAreNotObjects(t *testing.T) {
	t.Parallel()
	bus := &fakeBus{}
	var logs bytes.Buffer
	b := New(bus, "ops", slog.New(slog.NewJSONHandler(&logs, nil)))
	b.Publish(Event{DetailType: DeliveryFailed, Detail: []int{1}})
	b.Publish(Event{DetailType: DeliveryFailed, Detail: make(chan int)})
	b.Publish(Event{DetailType: DeliveryFailed, Detail: failure{N: 1}})
	b.Flush(context.Background())
	if st := b.Stats(); st.Sent != 1 || st.Failed != 2 {
		t.Errorf("stats %+v, want 1 sent, 2 failed", st)
	}
	if got := bus.calls[0][0].Detail; aws.ToString(got) != `{"N":1}` {
		t.Errorf("sent %s, want {\"N\":1}", aws.ToString(got))
	}
	if strings.Count(logs.String(), "is not a JSON object") != 2 {
		t.Errorf("logs %s, want a line per refused detail", logs.String())
	}
}

// Without a bus, a Batcher publishes nothing and calls nothing; a nil one too.
func TestNoBusIsANoOp(t *testing.T) {
	t.Parallel()
	bus := &fakeBus{}
	t.Cleanup(func() { // after the parallel subtests
		if n := len(bus.callSizes()); n != 0 {
			t.Errorf("%d calls, want none", n)
		}
	})
	cfg := config.Config{}
	tests := []struct {
		name string
		b    *Batcher
	}{
		{name: "nil", b: nil},
		{name: "no bus", b: New(bus, "", nil)},
		{name: "no client", b: &Batcher{Bus: "ops"}},
		{name: "from a configuration without EVENT_BUS_NAME", b: FromConfig(cfg, aws.Config{}, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.b.Enabled() {
				t.Fatal("enabled without a bus")
			}
			publishN(tt.b, 3)
			tt.b.Flush(context.Background())
			if st := tt.b.Stats(); st != (Stats{}) {
				t.Errorf("stats %+v, want none", st)
			}
		})
	}
	if b := FromConfig(config.Config{EventBusName: "ops"}, aws.Config{Region: "us-east-1"}, nil); !b.Enabled() || b.Bus != "ops" {
		t.Errorf("FromConfig with EVENT_BUS_NAME=ops: %+v, want a Batcher on bus ops", b)
	}
}

// Beyond its limit a Batcher drops events, logging the first drop once per flush period; the
// flush sends those kept and logs the count.
func TestPublishDropsBeyondTheLimit(t *testing.T) {
	t.Parallel()
	bus := &fakeBus{}
	var logs bytes.Buffer
	b := New(bus, "ops", slog.New(slog.NewJSONHandler(&logs, nil)))
	b.Limit = 3
	publishN(b, 7)
	if st := b.Stats(); st.Published != 3 || st.Dropped != 4 {
		t.Fatalf("stats %+v, want 3 published, 4 dropped", st)
	}
	if n := strings.Count(logs.String(), "buffer full"); n != 1 {
		t.Errorf("%d buffer-full lines, want 1:\n%s", n, logs.String())
	}
	b.Flush(context.Background())
	if st := b.Stats(); st.Sent != 3 {
		t.Errorf("stats %+v, want the 3 kept sent", st)
	}
	if !strings.Contains(logs.String(), `"dropped_total":4`) {
		t.Errorf("the flush did not log the drops:\n%s", logs.String())
	}
	publishN(b, 3) // room again after the flush
	if st := b.Stats(); st.Published != 6 || st.Dropped != 4 {
		t.Errorf("stats %+v after the flush, want 6 published, still 4 dropped", st)
	}
}

// Invocations running at once may share a Batcher: every event published is sent exactly once
// whichever invocation's flush takes it.
func TestConcurrentPublishAndFlush(t *testing.T) {
	t.Parallel()
	bus := &fakeBus{}
	b := New(bus, "ops", nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				b.Publish(Event{DetailType: DeliveryFailed, Detail: map[string]int{"w": w, "i": i}})
				if i%10 == 9 {
					b.Flush(context.Background())
				}
			}
		})
	}
	wg.Wait()
	b.Flush(context.Background())
	if st := b.Stats(); st.Sent != 400 || st.Published != 400 {
		t.Fatalf("stats %+v, want 400 published and sent", st)
	}
	for d, n := range bus.puts {
		if n != 1 {
			t.Errorf("event %s sent %d times", d, n)
		}
	}
	if len(bus.puts) != 400 {
		t.Errorf("%d distinct events sent, want 400", len(bus.puts))
	}
}

// An event published without a time gets the Batcher's clock's.
func TestPublishStampsTheTime(t *testing.T) {
	t.Parallel()
	bus := &fakeBus{}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := New(bus, "ops", nil)
	b.Now = func() time.Time { return at }
	b.Publish(Event{DetailType: EndpointDisabled, Detail: map[string]string{"endpoint_id": "ep_1"}})
	b.Flush(context.Background())
	e := bus.calls[0][0]
	var detail map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &detail); err != nil || detail["endpoint_id"] != "ep_1" {
		t.Errorf("detail %s: %v", aws.ToString(e.Detail), err)
	}
	if !aws.ToTime(e.Time).Equal(at) || aws.ToString(e.DetailType) != EndpointDisabled {
		t.Errorf("entry %+v, want time %s and type %s", e, at, EndpointDisabled)
	}
}
