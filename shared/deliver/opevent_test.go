package deliver

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/opevent"
	"github.com/pushfn/pushfn/shared/push"
)

// fakeEvents keeps what the handler publishes, and for each flush how many events it had
// been handed by then and the flush's deadline.
type fakeEvents struct {
	mu        sync.Mutex
	events    []opevent.Event
	flushes   []int
	deadlines []time.Time
}

func (f *fakeEvents) Publish(e opevent.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fakeEvents) Flush(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes = append(f.flushes, len(f.events))
	d, _ := ctx.Deadline()
	f.deadlines = append(f.deadlines, d)
}

// failures returns the details of the DeliveryFailed events published, by message id (the
// delivery id for a fan-out's delivery).
func (f *fakeEvents) failures(t *testing.T) map[string]opevent.DeliveryFailure {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]opevent.DeliveryFailure{}
	for _, e := range f.events {
		d, ok := e.Detail.(opevent.DeliveryFailure)
		if e.DetailType != opevent.DeliveryFailed || !ok || e.Time.IsZero() {
			t.Errorf("event %+v: want a %s with its detail and time", e, opevent.DeliveryFailed)
			continue
		}
		key := d.MessageID
		if d.DeliveryID != "" {
			key = d.DeliveryID
		}
		if _, dup := out[key]; dup {
			t.Errorf("two events for %s", key)
		}
		out[key] = d
	}
	return out
}

func (f *fakeEvents) flushCounts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.flushes...)
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// A record that ends failed publishes one DeliveryFailed event with its detail; one delivered,
// retrying or expired publishes none; the events of an invocation are flushed once, at its end.
func TestFailedDeliveriesPublishAnEvent(t *testing.T) {
	t.Parallel()
	ev := &fakeEvents{}
	b := newBundle(t, func(h *Handler) { h.Events = ev })
	notFound, ok, flaky := newTarget(t, 404, nil, 0), newTarget(t, 200, nil, 0), newTarget(t, 500, nil, 0)
	r404, id404 := b.record(t, notFound.URL+"/push")
	r200, _ := b.record(t, ok.URL+"/push")
	r500, _ := b.record(t, flaky.URL+"/push")
	_, expiredID := b.record(t, ok.URL)
	past := time.Now().Add(-time.Minute)
	expired := b.sqsRecord(t, message.Envelope{ID: expiredID, Fingerprint: fingerprint(expiredID), Target: message.Target{URL: ok.URL},
		Payload: json.RawMessage(`{"a":1}`), ExpiresAt: &past})
	_, badID := b.record(t, ok.URL)
	noPayload := b.copyOf(t, badID, fingerprint(badID), ok.URL)
	noPayload.Body = strings.Replace(noPayload.Body, `"payload":{"a":1}`, `"payload":null`, 1)

	if _, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{r404, r200, r500, expired, noPayload}}); err != nil {
		t.Fatal(err)
	}
	got := ev.failures(t)
	want := map[string]opevent.DeliveryFailure{
		id404: {MessageID: id404, TargetHost: hostOf(t, notFound.URL), Attempts: 1, Reason: "status 404: " + push.ErrStatus.Error()},
		badID: {MessageID: badID, Attempts: 0, Reason: "malformed message: no payload"},
	}
	if len(got) != len(want) {
		t.Errorf("events for %v, want for %v only (the 404 and the malformed record)", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("event of %s: %+v, want %+v", id, got[id], w)
		}
	}
	if f := ev.flushCounts(); len(f) != 1 || f[0] != 2 {
		t.Errorf("flushes %v, want one, after both events", f)
	}
}

// A record failed after its last attempt, or dead-lettered on its copy's last receive, publishes
// its event in the invocation that ended it; every invocation flushes once, events or not.
func TestRetriedDeliveryPublishesWhenItEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		receives   []string // ApproximateReceiveCount of each invocation's copy
		maxReceive int
		wantReason string
	}{
		{name: "attempts exhausted", receives: []string{"1", "2", "3"}, wantReason: "status 500: " + push.ErrStatus.Error()},
		{name: "dead-lettered", receives: []string{"1", "5"}, maxReceive: 5, wantReason: message.ReasonDeadLettered + ": status 500: " + push.ErrStatus.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := &fakeEvents{}
			b := newBundle(t, func(h *Handler) { h.Events, h.Config.MaxReceiveCount = ev, tt.maxReceive })
			tg := newTarget(t, 500, nil, 0)
			rec, id := b.record(t, tg.URL)
			for i, n := range tt.receives {
				rec.Attributes = map[string]string{"ApproximateReceiveCount": n}
				if _, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}}); err != nil {
					t.Fatal(err)
				}
				if got, last := len(ev.failures(t)), i == len(tt.receives)-1; (got == 1) != last || got > 1 {
					t.Fatalf("after invocation %d: %d events, want %d", i+1, got, map[bool]int{true: 1}[last])
				}
			}
			d := ev.failures(t)[id]
			if d.Reason != tt.wantReason || d.Attempts != len(tt.receives) || d.TargetHost != hostOf(t, tg.URL) {
				t.Errorf("event %+v, want reason %q after %d attempts", d, tt.wantReason, len(tt.receives))
			}
			if f := ev.flushCounts(); len(f) != len(tt.receives) {
				t.Errorf("%d flushes for %d invocations", len(f), len(tt.receives))
			}
		})
	}
}

// A delivery ended without an attempt, because its endpoint is disabled, publishes its event
// with the endpoint; a fan-out's failed delivery names its message and its delivery.
func TestEndpointDeliveriesPublishAnEvent(t *testing.T) {
	t.Parallel()
	ev := &fakeEvents{}
	b := newFanBundle(t)
	b.h.Events = ev
	notFound := newTarget(t, 404, nil, 0)
	off, _ := b.endpoint(t, "http://127.0.0.1:9/off", func(r *endpoint.Record) { r.Disabled = true })
	r, offMsg := b.toEndpoint(t, off.ID)
	sub, _ := b.endpoint(t, notFound.URL+"/hook", func(r *endpoint.Record) { r.TenantID = "acme" })
	fan, fanID := b.fanOut(t, "order.shipped", "acme")

	b.handle(t, r, fan)
	b.handle(t, b.prod.take()...)
	got := ev.failures(t)
	deliveryID := message.DeliveryID(fanID, sub.ID)
	want := map[string]opevent.DeliveryFailure{
		offMsg:     {MessageID: offMsg, EndpointID: off.ID, TargetHost: "127.0.0.1:9", Reason: message.ReasonEndpointDisabled},
		deliveryID: {MessageID: fanID, DeliveryID: deliveryID, EndpointID: sub.ID, TargetHost: hostOf(t, notFound.URL), Attempts: 1, Reason: "status 404: " + push.ErrStatus.Error()},
	}
	if len(got) != len(want) {
		t.Errorf("events for %v, want for %v only (the fan-out itself was delivered)", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("event of %s: %+v, want %+v", id, got[id], w)
		}
	}
	if f := ev.flushCounts(); len(f) != 2 {
		t.Errorf("flushes %v, want one per invocation", f)
	}
}

// The flush of an invocation ends half the margin before its deadline, leaving the rest for the
// response; without a deadline it has a budget of its own.
func TestFlushKeepsWithinTheDeadline(t *testing.T) {
	t.Parallel()
	ev := &fakeEvents{}
	b := newBundle(t, func(h *Handler) { h.Events, h.Margin = ev, 2*time.Second })
	tg := newTarget(t, 200, nil, 0)
	rec, _ := b.record(t, tg.URL)
	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if _, err := b.h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{rec}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}}); err != nil {
		t.Fatal(err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.deadlines) != 2 {
		t.Fatalf("%d flushes, want 2", len(ev.deadlines))
	}
	if want := deadline.Add(-time.Second); !ev.deadlines[0].Equal(want) {
		t.Errorf("flush deadline %s, want %s (the invocation's less half the margin)", ev.deadlines[0], want)
	}
	if d := ev.deadlines[1]; d.IsZero() || d.Before(start) {
		t.Errorf("flush deadline without an invocation deadline: %s, want one of its own", d)
	}
}

// FromConfig gives the handler a publisher on EVENT_BUS_NAME's bus, and none without one.
func TestFromConfigWiresEvents(t *testing.T) {
	t.Parallel()
	for _, bus := range []string{"", "ops"} {
		cfg := config.Defaults()
		cfg.QueueURL, cfg.TableName, cfg.EndpointSecretsKey, cfg.EventBusName = "http://sqs.local/q", "t", config.Secret(strings.Repeat("k", 40)), bus
		h, err := FromConfig(cfg, aws.Config{Region: "us-east-1"}, &recordingSender{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := h.Events.(*opevent.Batcher)
		switch {
		case bus == "" && h.Events != nil:
			t.Errorf("no bus: Events is %#v, want nil", h.Events)
		case bus != "" && (!ok || b.Bus != bus || !b.Enabled()):
			t.Errorf("bus %q: Events is %#v, want a Batcher on it", bus, h.Events)
		case (h.Health.Events != nil) != (bus != ""):
			t.Errorf("bus %q: the health's publisher is %#v, want one exactly when there is a bus", bus, h.Health.Events)
		}
	}
}

// statusSender answers every push with a permanent failure of its status and no error text.
type statusSender struct{ status int }

func (s statusSender) Send(context.Context, push.Request) push.Result {
	return push.Result{Outcome: push.Permanent, StatusCode: s.status}
}

// An attempt that failed with a status and no error text gives the reason "status N".
func TestFailureReasonFallsBackToTheStatus(t *testing.T) {
	t.Parallel()
	ev := &fakeEvents{}
	b := newBundle(t, func(h *Handler) { h.Events, h.Sender = ev, statusSender{status: 410} })
	rec, id := b.record(t, "http://127.0.0.1:9/push")
	if _, err := b.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}}); err != nil {
		t.Fatal(err)
	}
	if d := ev.failures(t)[id]; d.Reason != "status 410" || d.Attempts != 1 {
		t.Errorf("event %+v, want reason status 410 after 1 attempt", d)
	}
}

// The health's events (an endpoint disabled) reach the handler's publisher unchanged.
func TestHealthEventsReachThePublisher(t *testing.T) {
	t.Parallel()
	ev := &fakeEvents{}
	at := time.Now()
	detail := EndpointDisabled{EndpointID: "ep_1", FailingSince: at.Add(-time.Hour), DisabledAt: at}
	healthEvents{ev}.Publish(OpEvent{DetailType: DetailTypeEndpointDisabled, Detail: detail, Time: at})
	if len(ev.events) != 1 || ev.events[0].DetailType != opevent.EndpointDisabled || ev.events[0].Detail != detail || !ev.events[0].Time.Equal(at) {
		t.Errorf("published %+v, want the endpoint.disabled event as it was made", ev.events)
	}
}
