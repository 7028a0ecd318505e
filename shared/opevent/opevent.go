// Package opevent publishes pushfn's operational events (a delivery failed, an endpoint was
// disabled, a recovery finished) to an EventBridge bus: collected in memory during an
// invocation and sent in batches at its end, so that their failure never fails the work that
// made them.
//
// Ships in the functions that publish events (the deliver function).
package opevent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"golang.org/x/sync/errgroup"
)

// Source is the source of every event pushfn puts on a bus: a rule matches pushfn's events with
// {"source": ["pushfn"]}.
const Source = "pushfn"

// The detail types pushfn publishes.
const (
	DeliveryFailed   = "pushfn.delivery.failed"
	EndpointDisabled = "pushfn.endpoint.disabled"
	EndpointEnabled  = "pushfn.endpoint.enabled"
	RecoveryFinished = "pushfn.recovery.finished"
)

// Event is one operational event: DetailType such as "pushfn.delivery.failed", Detail a value
// that encodes as a JSON object, Time when it happened (zero: when it was published).
type Event struct {
	DetailType string
	Detail     any
	Time       time.Time
}

// Publisher takes operational events. Publish never blocks on the network and never fails: an
// event it cannot keep or send is logged and dropped.
type Publisher interface {
	Publish(e Event)
}

// Client is the part of EventBridge a Batcher calls; *eventbridge.Client is the real one.
type Client interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var (
	_ Client    = (*eventbridge.Client)(nil)
	_ Publisher = (*Batcher)(nil)
)

// Limits of a Batcher.
const (
	// MaxEntries is the most entries one PutEvents call takes.
	MaxEntries = 10
	// DefaultLimit is the most events a Batcher holds between two flushes when its Limit is 0:
	// a few hundred bytes each, so at most a few MB, above the 10,000 records of the largest
	// SQS batch a deliver invocation gets.
	DefaultLimit = 10_000
	// Tries is how many times a flush puts an entry the service failed (FailedEntryCount), the
	// first put included.
	Tries = 3
	// sendsAtOnce bounds the PutEvents calls of one flush in flight at once.
	sendsAtOnce = 4
)

// Batcher is a Publisher that keeps events in memory until Flush sends them to its bus. It is
// safe for concurrent use: invocations running at once in one process may share it, each
// flushing what is held when it ends. A nil *Batcher, or one without a Client or a Bus, is a
// no-op publisher.
type Batcher struct {
	Client Client
	Bus    string       // the EventBusName of every entry
	Limit  int          // events held at most; 0 means DefaultLimit
	Log    *slog.Logger // nil: no logs
	Now    func() time.Time

	mu      sync.Mutex
	pending []Event
	full    bool // an event was dropped since the last flush, and logged

	published, sent, failed, dropped atomic.Int64
}

// New returns a Batcher putting events on the bus named bus through c; with an empty bus it
// publishes nothing.
func New(c Client, bus string, log *slog.Logger) *Batcher {
	return &Batcher{Client: c, Bus: bus, Log: log}
}

// Stats counts what a Batcher did with the events published to it.
type Stats struct {
	Published int64 // taken by Publish and held
	Sent      int64 // accepted by EventBridge
	Failed    int64 // not accepted: a call that failed, an entry failed on every try, a detail that does not encode
	Dropped   int64 // refused by Publish: the buffer was full
}

// Stats returns the counts so far.
func (b *Batcher) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	return Stats{Published: b.published.Load(), Sent: b.sent.Load(), Failed: b.failed.Load(), Dropped: b.dropped.Load()}
}

// Enabled reports whether events published to b are sent anywhere.
func (b *Batcher) Enabled() bool { return b != nil && b.Client != nil && b.Bus != "" }

// Publish holds e until the next Flush. Beyond the limit it drops e, logging the first event
// dropped since the last flush (Flush logs how many).
func (b *Batcher) Publish(e Event) {
	if !b.Enabled() {
		return
	}
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	limit := b.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	b.mu.Lock()
	if len(b.pending) >= limit {
		first := !b.full
		b.full = true
		b.mu.Unlock()
		b.dropped.Add(1)
		if first {
			b.log().Warn("operational events buffer full, dropping events until the next flush", "limit", limit, "detail_type", e.DetailType)
		}
		return
	}
	b.pending = append(b.pending, e)
	b.mu.Unlock()
	b.published.Add(1)
}

// Flush sends every event held, MaxEntries per PutEvents call, a few calls at once, within
// ctx. Entries EventBridge fails are put again, up to Tries puts each; what still fails is
// logged and counted, never returned: an operational event never fails the work it reports.
func (b *Batcher) Flush(ctx context.Context) {
	if !b.Enabled() {
		return
	}
	b.mu.Lock()
	events, full := b.pending, b.full
	b.pending, b.full = nil, false
	b.mu.Unlock()
	if full {
		b.log().WarnContext(ctx, "operational events dropped: the buffer was full", "dropped_total", b.dropped.Load())
	}
	if len(events) == 0 {
		return
	}
	entries := make([]types.PutEventsRequestEntry, 0, len(events))
	for _, e := range events {
		detail, err := json.Marshal(e.Detail)
		if err != nil || len(detail) == 0 || detail[0] != '{' {
			b.failed.Add(1)
			b.log().ErrorContext(ctx, "operational event not sent: its detail is not a JSON object", "detail_type", e.DetailType, "error", fmt.Sprint(err))
			continue
		}
		entries = append(entries, types.PutEventsRequestEntry{
			Source: aws.String(Source), DetailType: aws.String(e.DetailType), Detail: aws.String(string(detail)),
			EventBusName: aws.String(b.Bus), Time: aws.Time(e.Time),
		})
	}
	var g errgroup.Group
	g.SetLimit(sendsAtOnce)
	for start := 0; start < len(entries); start += MaxEntries {
		chunk := entries[start:min(start+MaxEntries, len(entries))]
		g.Go(func() error {
			b.put(ctx, chunk)
			return nil
		})
	}
	_ = g.Wait()
}

// put sends entries (at most MaxEntries) in one call, then again those EventBridge failed, up
// to Tries calls.
func (b *Batcher) put(ctx context.Context, entries []types.PutEventsRequestEntry) {
	for try := 1; ; try++ {
		out, err := b.Client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			// The SDK has retried what it retries (throttling, 5xx, timeouts).
			b.failed.Add(int64(len(entries)))
			b.log().ErrorContext(ctx, "operational events not sent", "bus", b.Bus, "events", len(entries), "error", err.Error())
			return
		}
		var again []types.PutEventsRequestEntry
		var codes, messages []string
		for i, e := range entries {
			if i < len(out.Entries) && out.Entries[i].ErrorCode == nil {
				b.sent.Add(1)
				continue
			}
			again = append(again, e)
			code, msg := "no answer for the entry", ""
			if i < len(out.Entries) {
				code, msg = aws.ToString(out.Entries[i].ErrorCode), aws.ToString(out.Entries[i].ErrorMessage)
			}
			codes, messages = append(codes, code), append(messages, msg)
		}
		if len(again) == 0 {
			return
		}
		if try >= Tries || ctx.Err() != nil {
			b.failed.Add(int64(len(again)))
			for i, e := range again {
				b.log().ErrorContext(ctx, "operational event not sent: EventBridge failed it", "bus", b.Bus, "detail_type", aws.ToString(e.DetailType),
					"tries", try, "error_code", codes[i], "error", messages[i])
			}
			return
		}
		entries = again
	}
}

func (b *Batcher) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

func (b *Batcher) log() *slog.Logger {
	if b.Log == nil {
		return discard
	}
	return b.Log
}

var discard = slog.New(slog.DiscardHandler)

// DeliveryFailure is the detail of a DeliveryFailed event: a message, or one delivery of a
// fan-out, that ended failed.
type DeliveryFailure struct {
	MessageID  string `json:"message_id"`
	DeliveryID string `json:"delivery_id,omitempty"` // a fan-out's delivery
	EndpointID string `json:"endpoint_id,omitempty"`
	TargetHost string `json:"target_host,omitempty"`
	Attempts   int    `json:"attempts"`
	// Reason is the last attempt's error, or "status N" for a target's answer N.
	Reason string `json:"reason"`
}

// RecoveryEnd is the detail of a RecoveryFinished event: a recovery of an endpoint's window that
// went through every delivery of it.
type RecoveryEnd struct {
	RecoveryID string `json:"recovery_id"`
	EndpointID string `json:"endpoint_id"`
	Matched    int    `json:"matched"`  // failed deliveries found in the window
	Requeued   int    `json:"requeued"` // of those, queued again
}

// EndpointEnable is the detail of an EndpointEnabled event: an endpoint disabled (by hand, or
// for failing) enabled again through the API.
type EndpointEnable struct {
	EndpointID     string    `json:"endpoint_id"`
	TenantID       string    `json:"tenant_id,omitempty"`
	DisabledReason string    `json:"disabled_reason"` // why it had been disabled: manual or failing
	EnabledAt      time.Time `json:"enabled_at"`
}
