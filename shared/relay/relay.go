// Package relay accepts messages from AWS event sources: EventBridge events, SNS
// notifications and direct invocations, validated and enqueued exactly as the HTTP API does.
//
// Ships in the relay function.
package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
)

// Sources, as logs name them.
const (
	SourceEventBridge = "eventbridge"
	SourceSNS         = "sns"
	SourceDirect      = "direct"
)

// ErrRetry is returned (wrapped) when some message could not be enqueued for a reason that may
// pass: the event source is to deliver the event again. Messages already enqueued are replays
// then, by their idempotency keys.
var ErrRetry = errors.New("some messages could not be enqueued; retry the event")

// Response is what an invocation returns: one item per message, as the batch route answers, or
// the error of input that was refused.
type Response struct {
	Messages []ingest.Item `json:"messages,omitempty"`
	Error    *ingest.Error `json:"error,omitempty"`
}

// Handler relays events to the queue. Its fields are set once and never changed; it is safe for
// concurrent use.
type Handler struct {
	Enqueuer *ingest.Enqueuer
	Rules    message.Rules
	// Metrics takes each invocation's metrics, written once at its end; nil writes none.
	Metrics *metrics.Writer
	Logger  *slog.Logger     // nil means slog.Default()
	Now     func() time.Time // nil means time.Now
}

// unit is one body of messages from the event, with the id of the event that carried it.
type unit struct {
	source  string
	eventID string
	body    []byte
	msgs    []message.Message
	invalid *message.InvalidError
}

// Handle accepts one invocation. The shape is told from the JSON: an SNS event ("Records" of
// aws:sns), an EventBridge event ("detail-type" and "detail"), else a direct invocation carrying
// a message or {"messages": [...]}.
//
// A message without an idempotency key gets the id of the event that carried it as its key: the
// EventBridge id, the SNS MessageId, or the Lambda request id of a direct invocation (the same
// for Lambda's own retries of an asynchronous invoke). In a batch, message i gets
// "<event id>/<i>", so the messages of one event stay distinct and a redelivered event maps to
// the same keys. A derived key that is not a valid key (over 255 characters) is replaced by
// "sha256:<hex of it>".
//
// Invalid input is logged and answered, never retried: Handle returns a nil error for it. When
// a dependency failed, Handle returns an error wrapping ErrRetry so that the source retries.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Response, error) {
	m := h.Metrics.Invocation()
	ctx = metrics.NewContext(ctx, m)
	m.Add(metrics.MessagesAccepted, 0)
	m.Add(metrics.MessagesReplayed, 0)
	defer func() {
		if err := m.Flush(h.now()); err != nil {
			h.logger().ErrorContext(ctx, "metrics not written", "error", err.Error())
		}
	}()
	units, err := h.units(ctx, raw)
	if err != nil {
		h.logger().WarnContext(ctx, "refused event", "error", err)
		e := ingest.Error{Code: ingest.CodeValidationFailed, Message: err.Error()}
		m.AddBy(metrics.MessagesRefused, metrics.DimCode, e.Code, 1)
		return Response{Error: &e}, nil
	}
	var resp Response
	var all []message.Message
	for i := range units {
		u := &units[i]
		ms, batch, err := h.parse(u.body)
		if errors.As(err, &u.invalid) {
			problems := make([]string, len(u.invalid.Problems))
			for j, p := range u.invalid.Problems {
				problems[j] = p.String()
			}
			h.logger().WarnContext(ctx, "refused invalid messages", "source", u.source, "event_id", u.eventID, "problems", problems)
			e := ingest.InvalidBody(u.invalid).Error
			resp.Error = &e
			m.AddBy(metrics.MessagesRefused, metrics.DimCode, e.Code, 1) // its messages are not known
			continue
		}
		u.msgs = withDefaultKeys(ms, batch, u.eventID)
		err = h.Enqueuer.CheckEndpoints(ctx, u.msgs, batch)
		var missing *ingest.MissingEndpointsError
		switch {
		case errors.As(err, &missing):
			h.logger().WarnContext(ctx, "refused messages to missing endpoints", "source", u.source, "event_id", u.eventID, "error", err.Error())
			e := ingest.MissingEndpointsBody(missing).Error
			resp.Error = &e
			m.AddBy(metrics.MessagesRefused, metrics.DimCode, e.Code, float64(len(u.msgs)))
			u.msgs = nil
			continue
		case err != nil:
			// The endpoints could not be read: nothing of the event is queued, and the source
			// retries it.
			h.logger().WarnContext(ctx, "check endpoints", "source", u.source, "event_id", u.eventID, "error", err.Error())
			m.AddBy(metrics.MessagesRefused, metrics.DimCode, ingest.CodeUnavailable, float64(len(all)+len(u.msgs))) // none of the event's
			return Response{}, fmt.Errorf("relay: %w: %w", ErrRetry, err)
		}
		all = append(all, u.msgs...)
	}
	if len(all) == 0 {
		return resp, nil
	}

	results := h.Enqueuer.Enqueue(ctx, all)
	resp.Messages = ingest.ItemsOf(results).Messages
	retry := 0
	for i, r := range results {
		switch {
		case r.Err != nil:
			m.AddBy(metrics.MessagesRefused, metrics.DimCode, ingest.ErrorOf(r.Err).Code, 1)
		case r.Replayed:
			m.Add(metrics.MessagesReplayed, 1)
		default:
			m.Add(metrics.MessagesAccepted, 1)
		}
		switch {
		case errors.Is(r.Err, ingest.ErrUnavailable), errors.Is(r.Err, ingest.ErrInProgress):
			retry++
		case r.Err != nil:
			h.logger().WarnContext(ctx, "refused message", "message_id", r.ID, "index", i, "error", r.Err)
		default:
			h.logger().DebugContext(ctx, "relayed message", "message_id", r.ID, "replayed", r.Replayed)
		}
	}
	if retry > 0 {
		return resp, fmt.Errorf("relay: %d of %d messages: %w", retry, len(results), ErrRetry)
	}
	h.logger().InfoContext(ctx, "relayed event", "messages", len(results))
	return resp, nil
}

// units splits an invocation into the bodies of messages it carries.
func (h *Handler) units(ctx context.Context, raw json.RawMessage) ([]unit, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		// Not an object: let the message decoder say what is wrong with it.
		return []unit{{source: SourceDirect, eventID: requestID(ctx), body: raw}}, nil
	}
	if _, ok := top["Records"]; ok {
		var ev events.SNSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("not an SNS event: %w", err)
		}
		units := make([]unit, 0, len(ev.Records))
		for _, r := range ev.Records {
			if r.EventSource != "aws:sns" {
				return nil, fmt.Errorf("unsupported event source %q: the relay takes SNS, EventBridge and direct invocations", r.EventSource)
			}
			units = append(units, unit{source: SourceSNS, eventID: r.SNS.MessageID, body: []byte(r.SNS.Message)})
		}
		return units, nil
	}
	_, hasType := top["detail-type"]
	if detail, ok := top["detail"]; ok && hasType {
		var ev events.EventBridgeEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("not an EventBridge event: %w", err)
		}
		return []unit{{source: SourceEventBridge, eventID: ev.ID, body: detail}}, nil
	}
	return []unit{{source: SourceDirect, eventID: requestID(ctx), body: raw}}, nil
}

// parse reads body as a batch when it has "messages", else as one message.
func (h *Handler) parse(body []byte) (ms []message.Message, batch bool, err error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(body, &probe) == nil {
		if _, ok := probe["messages"]; ok {
			ms, err := h.Rules.ParseBatch(body, h.now())
			return ms, true, err
		}
	}
	m, err := h.Rules.Parse(body, h.now())
	if err != nil {
		return nil, false, err
	}
	return []message.Message{m}, false, nil
}

// withDefaultKeys gives every message without an idempotency key one derived from eventID.
func withDefaultKeys(ms []message.Message, batch bool, eventID string) []message.Message {
	if eventID == "" {
		return ms
	}
	for i := range ms {
		if ms[i].IdempotencyKey != "" {
			continue
		}
		key := eventID
		if batch {
			key += "/" + strconv.Itoa(i)
		}
		if message.CheckIdempotencyKey(key) != "" {
			sum := sha256.Sum256([]byte(key))
			key = "sha256:" + hex.EncodeToString(sum[:])
		}
		ms[i].IdempotencyKey = key
	}
	return ms
}

func requestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return strings.TrimSpace(lc.AwsRequestID)
	}
	return ""
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}
