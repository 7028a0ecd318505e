// Package events_test decodes every sample event in this folder into the type its function
// receives, so the samples cannot drift from aws-lambda-go or from pushfn's message model.
package events_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/pushfn/pushfn/shared/message"
)

// decodeStrict decodes data into v, refusing unknown fields and trailing data.
func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode into %T: %v", v, err)
	}
	if dec.More() {
		t.Fatalf("decode into %T: trailing data", v)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// batch is the body of POST /v1/messages/batch, of a direct invoke, or of an SNS message.
type batch struct {
	Messages []message.Message `json:"messages"`
}

func TestAPIGatewayEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file     string
		method   string
		routeKey string
		pathID   string
		body     func(t *testing.T, body []byte)
	}{
		{file: "api-post.json", method: "POST", routeKey: "POST /v1/messages", body: func(t *testing.T, body []byte) {
			var m message.Message
			decodeStrict(t, body, &m)
			if !strings.HasPrefix(m.Target.URL, "https://") || len(m.Payload) == 0 || m.IdempotencyKey == "" {
				t.Errorf("message %+v: want an https target, a payload and an idempotency key", m)
			}
		}},
		{file: "api-post-batch.json", method: "POST", routeKey: "POST /v1/messages/batch", body: func(t *testing.T, body []byte) {
			var b batch
			decodeStrict(t, body, &b)
			if len(b.Messages) < 2 {
				t.Errorf("%d messages, want several", len(b.Messages))
			}
		}},
		{file: "api-get.json", method: "GET", routeKey: "GET /v1/messages/{id}", pathID: message.IDForKey("order-42-shipped")},
		{file: "api-post-invalid.json", method: "POST", routeKey: "POST /v1/messages", body: func(t *testing.T, body []byte) {
			var m message.Message
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err == nil {
				t.Error("the invalid sample decodes as a valid message; it should carry an unknown field")
			}
			if err := json.Unmarshal(body, &map[string]any{}); err != nil {
				t.Errorf("the invalid sample must still be JSON (its faults are of shape, not syntax): %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			var ev events.APIGatewayV2HTTPRequest
			decodeStrict(t, readFile(t, tt.file), &ev)
			if ev.Version != "2.0" || ev.RouteKey != tt.routeKey || ev.RequestContext.RouteKey != tt.routeKey ||
				ev.RequestContext.HTTP.Method != tt.method || ev.RequestContext.HTTP.Path != ev.RawPath {
				t.Errorf("version %q, route %q/%q, method %q, path %q/%q", ev.Version, ev.RouteKey, ev.RequestContext.RouteKey,
					ev.RequestContext.HTTP.Method, ev.RawPath, ev.RequestContext.HTTP.Path)
			}
			if tt.pathID != "" && (ev.PathParameters["id"] != tt.pathID || !strings.HasSuffix(ev.RawPath, "/"+tt.pathID) || !message.ValidID(tt.pathID)) {
				t.Errorf("path parameter id %q, raw path %q, want the valid id %s", ev.PathParameters["id"], ev.RawPath, tt.pathID)
			}
			if tt.body == nil {
				if ev.Body != "" {
					t.Errorf("body %q, want none", ev.Body)
				}
				return
			}
			if ev.IsBase64Encoded || ev.Headers["content-type"] != "application/json" {
				t.Errorf("base64 %v, content-type %q; want a plain JSON body", ev.IsBase64Encoded, ev.Headers["content-type"])
			}
			tt.body(t, []byte(ev.Body))
		})
	}
}

func TestSQSBatch(t *testing.T) {
	t.Parallel()
	var ev events.SQSEvent
	decodeStrict(t, readFile(t, "sqs-batch.json"), &ev)
	if len(ev.Records) < 2 {
		t.Fatalf("%d records, want several", len(ev.Records))
	}
	for i, r := range ev.Records {
		var env message.Envelope
		decodeStrict(t, []byte(r.Body), &env)
		if !message.ValidID(env.ID) || env.Target.URL == "" || len(env.Payload) == 0 {
			t.Errorf("record %d: envelope %+v lacks a valid id, target or payload", i, env)
		}
		sum := md5.Sum([]byte(r.Body))
		if r.EventSource != "aws:sqs" || r.MessageId == "" || r.ReceiptHandle == "" || r.Md5OfBody != hex.EncodeToString(sum[:]) {
			t.Errorf("record %d: source %q, id %q, md5 %s (body's is %x)", i, r.EventSource, r.MessageId, r.Md5OfBody, sum)
		}
		if r.Attributes["ApproximateReceiveCount"] == "" {
			t.Errorf("record %d: no ApproximateReceiveCount", i)
		}
	}
}

func TestEventBridgeEvent(t *testing.T) {
	t.Parallel()
	var ev events.EventBridgeEvent
	decodeStrict(t, readFile(t, "eventbridge.json"), &ev)
	if ev.ID == "" || ev.Source == "" || ev.DetailType == "" {
		t.Errorf("id %q, source %q, detail-type %q: want all set", ev.ID, ev.Source, ev.DetailType)
	}
	var m message.Message
	decodeStrict(t, ev.Detail, &m)
	if m.Target.URL == "" || len(m.Payload) == 0 {
		t.Errorf("detail %+v: want a message", m)
	}
}

func TestSNSEvent(t *testing.T) {
	t.Parallel()
	var ev events.SNSEvent
	decodeStrict(t, readFile(t, "sns.json"), &ev)
	if len(ev.Records) != 1 {
		t.Fatalf("%d records, want 1", len(ev.Records))
	}
	n := ev.Records[0].SNS
	if ev.Records[0].EventSource != "aws:sns" || n.MessageID == "" || n.Type != "Notification" {
		t.Errorf("source %q, message id %q, type %q", ev.Records[0].EventSource, n.MessageID, n.Type)
	}
	var b batch
	decodeStrict(t, []byte(n.Message), &b)
	if len(b.Messages) == 0 {
		t.Error("SNS message carries no messages")
	}
}

func TestDirectInvoke(t *testing.T) {
	t.Parallel()
	var b batch
	decodeStrict(t, readFile(t, "invoke.json"), &b)
	if len(b.Messages) == 0 || b.Messages[0].Target.URL == "" {
		t.Errorf("invoke payload %+v: want at least one message", b)
	}
}

// The samples of messages to an endpoint: each message names a valid endpoint id and no target,
// as the relay parses it.
func TestEndpointEvents(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, ms []message.Message) {
		t.Helper()
		if len(ms) == 0 {
			t.Fatal("no messages")
		}
		for i, m := range ms {
			if !message.ValidEndpointID(m.EndpointID) || m.Target.URL != "" || len(m.Payload) == 0 {
				t.Errorf("message %d: endpoint_id %q, target %q: want a valid endpoint id, no target, a payload", i, m.EndpointID, m.Target.URL)
			}
		}
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	t.Run("eventbridge-endpoint.json", func(t *testing.T) {
		t.Parallel()
		var ev events.EventBridgeEvent
		decodeStrict(t, readFile(t, "eventbridge-endpoint.json"), &ev)
		if ev.ID == "" || ev.Source == "" || ev.DetailType == "" {
			t.Errorf("id %q, source %q, detail-type %q: want all set", ev.ID, ev.Source, ev.DetailType)
		}
		m, err := message.Rules{}.Parse(ev.Detail, now)
		if err != nil {
			t.Fatalf("detail: %v", err)
		}
		check(t, []message.Message{m})
	})
	t.Run("sns-endpoint.json", func(t *testing.T) {
		t.Parallel()
		var ev events.SNSEvent
		decodeStrict(t, readFile(t, "sns-endpoint.json"), &ev)
		if len(ev.Records) != 1 || ev.Records[0].EventSource != "aws:sns" || ev.Records[0].SNS.Type != "Notification" {
			t.Fatalf("records %+v: want one SNS notification", ev.Records)
		}
		ms, err := message.Rules{}.ParseBatch([]byte(ev.Records[0].SNS.Message), now)
		if err != nil {
			t.Fatalf("SNS message: %v", err)
		}
		check(t, ms)
	})
}

// The samples of fan-outs: each message names an event type (and a tenant) and no other
// destination, as the relay parses it.
func TestFanOutEvents(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, ms []message.Message) {
		t.Helper()
		if len(ms) == 0 {
			t.Fatal("no messages")
		}
		for i, m := range ms {
			if message.CheckEventType(m.EventType) != "" || m.TenantID == "" || m.EndpointID != "" || m.Target.URL != "" || len(m.Payload) == 0 {
				t.Errorf("message %d: %+v: want an event type, a tenant, no other destination, a payload", i, m)
			}
		}
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	t.Run("eventbridge-fanout.json", func(t *testing.T) {
		t.Parallel()
		var ev events.EventBridgeEvent
		decodeStrict(t, readFile(t, "eventbridge-fanout.json"), &ev)
		m, err := message.Rules{}.Parse(ev.Detail, now)
		if err != nil {
			t.Fatalf("detail: %v", err)
		}
		check(t, []message.Message{m})
	})
	t.Run("sns-fanout.json", func(t *testing.T) {
		t.Parallel()
		var ev events.SNSEvent
		decodeStrict(t, readFile(t, "sns-fanout.json"), &ev)
		if len(ev.Records) != 1 || ev.Records[0].EventSource != "aws:sns" {
			t.Fatalf("records %+v: want one SNS notification", ev.Records)
		}
		ms, err := message.Rules{}.ParseBatch([]byte(ev.Records[0].SNS.Message), now)
		if err != nil {
			t.Fatalf("SNS message: %v", err)
		}
		check(t, ms)
	})
}
