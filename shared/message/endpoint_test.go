package message

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const okEndpoint = "ep_06h3230102tq4gpdzyxsvjwpec"

// TestParseDestination checks the rule that a message names exactly one destination: a target
// an endpoint_id or an event_type (a fan-out, with an optional tenant_id).
func TestParseDestination(t *testing.T) {
	t.Parallel()
	ep := fmt.Sprintf("%q", okEndpoint)
	tests := []struct {
		name   string
		body   string
		paths  []string // nil: accepted
		reason string   // a word the first reason must contain
	}{
		{"endpoint only", msg("target", "-", "endpoint_id", ep), nil, ""},
		{"endpoint, target null", msg("target", "null", "endpoint_id", ep), nil, ""},
		{"target, endpoint null", msg("endpoint_id", "null"), nil, ""},
		{"both", msg("endpoint_id", ep), []string{"endpoint_id"}, "one destination"},
		{"both, target with headers only", msg("target", `{"url":"`+okURL+`","headers":{"X-A":"1"}}`, "endpoint_id", ep), []string{"endpoint_id"}, "one destination"},
		{"both, target with an empty url", msg("target", `{"url":""}`, "endpoint_id", ep), []string{"endpoint_id"}, "one destination"},
		{"neither", msg("target", "-"), []string{"target"}, "endpoint_id"},
		{"neither, both null", msg("target", "null", "endpoint_id", "null"), []string{"target"}, "endpoint_id"},
		{"endpoint empty", msg("target", "-", "endpoint_id", `""`), []string{"endpoint_id"}, "empty"},
		{"endpoint number", msg("target", "-", "endpoint_id", `7`), []string{"endpoint_id"}, "string"},
		{"endpoint of another kind", msg("target", "-", "endpoint_id", `"msg_06h3230102tq4gpdzyxsvjwpec"`), []string{"endpoint_id"}, "not an endpoint id"},
		{"endpoint too short", msg("target", "-", "endpoint_id", `"ep_06h32"`), []string{"endpoint_id"}, "not an endpoint id"},
		{"endpoint upper case", msg("target", "-", "endpoint_id", `"`+strings.ToUpper(okEndpoint)+`"`), []string{"endpoint_id"}, "not an endpoint id"},
		{"event type", msg("target", "-", "event_type", `"order.shipped"`), nil, ""},
		{"event type and tenant", msg("target", "-", "event_type", `"order.shipped"`, "tenant_id", `"acme"`), nil, ""},
		{"event type, others null", msg("target", "null", "endpoint_id", "null", "event_type", `"order.shipped"`, "tenant_id", "null"), nil, ""},
		{"event type beside a target", msg("event_type", `"order.shipped"`), []string{"event_type"}, "one destination"},
		{"event type beside an endpoint", msg("target", "-", "endpoint_id", ep, "event_type", `"order.shipped"`), []string{"event_type"}, "one destination"},
		{"event type empty", msg("target", "-", "event_type", `""`), []string{"event_type"}, "empty"},
		{"event type with a star", msg("target", "-", "event_type", `"order.*"`), []string{"event_type"}, "*"},
		{"event type with a space", msg("target", "-", "event_type", `"order shipped"`), []string{"event_type"}, "without spaces"},
		{"event type a number", msg("target", "-", "event_type", `1`), []string{"event_type"}, "string"},
		{"event type too long", msg("target", "-", "event_type", `"`+strings.Repeat("a", MaxEventTypeBytes+1)+`"`), []string{"event_type"}, "1 to 128"},
		{"tenant empty", msg("target", "-", "event_type", `"order.shipped"`, "tenant_id", `""`), []string{"tenant_id"}, "empty"},
		{"tenant with a control character", msg("target", "-", "event_type", `"order.shipped"`, "tenant_id", `"a\tb"`), []string{"tenant_id"}, "printable"},
		{"tenant alone", msg("target", "-", "tenant_id", `"acme"`), []string{"target", "tenant_id"}, "required"},
		{"tenant beside a target", msg("tenant_id", `"acme"`), []string{"tenant_id"}, "event_type"},
		{"tenant beside an endpoint", msg("target", "-", "endpoint_id", ep, "tenant_id", `"acme"`), []string{"tenant_id"}, "event_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Rules{}.Parse([]byte(tt.body), testNow)
			if tt.paths == nil {
				if err != nil {
					t.Fatalf("Parse(%s) = %v", tt.body, err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Parse(%s) = %+v, %v; want an *InvalidError", tt.body, m, err)
			}
			var got []string
			for _, p := range ie.Problems {
				got = append(got, p.Path())
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.paths) || !strings.Contains(ie.Problems[0].Reason, tt.reason) {
				t.Fatalf("problems %v, want at %v with %q in the first reason", ie.Problems, tt.paths, tt.reason)
			}
		})
	}
}

func TestParseEndpointMessage(t *testing.T) {
	t.Parallel()
	m, err := Rules{}.Parse([]byte(msg("target", "-", "endpoint_id", `"`+okEndpoint+`"`, "idempotency_key", `"k"`)), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if m.EndpointID != okEndpoint || m.Target.URL != "" || m.Target.Headers != nil || m.IdempotencyKey != "k" {
		t.Fatalf("parsed %+v", m)
	}
	// The batch route takes endpoint messages beside target messages, and reports each problem
	// at its index.
	body := `{"messages":[` + msg("target", "-", "endpoint_id", `"`+okEndpoint+`"`) + `,` + msg() + `,` +
		msg("target", "-", "endpoint_id", `"ep_x"`) + `]}`
	_, err = Rules{}.ParseBatch([]byte(body), testNow)
	var ie *InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) != 1 || ie.Problems[0].Path() != "messages[2].endpoint_id" {
		t.Fatalf("batch: %v, want one problem at messages[2].endpoint_id", err)
	}
}

func TestFingerprintOfEndpointMessage(t *testing.T) {
	t.Parallel()
	fp := func(m Message) string {
		s, err := Fingerprint(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := Message{EndpointID: okEndpoint, Payload: []byte(`{"a":1,"b":2}`)}
	same := Message{EndpointID: okEndpoint, Payload: []byte(` {"b":2, "a":1} `), IdempotencyKey: "k", DelaySeconds: 5}
	if fp(base) != fp(same) {
		t.Error("the fingerprint of an endpoint message depends on whitespace, key order, key or delay")
	}
	for name, m := range map[string]Message{
		"another endpoint": {EndpointID: "ep_06h3230102tq4gpdzyxsvjwped", Payload: base.Payload},
		"another payload":  {EndpointID: okEndpoint, Payload: []byte(`{"a":1,"b":3}`)},
		// The same payload to a target is another message, even to a URL named like the id.
		"a target": {Target: Target{URL: okEndpoint}, Payload: base.Payload},
	} {
		if fp(m) == fp(base) {
			t.Errorf("%s keeps the fingerprint", name)
		}
	}
	// The fingerprint of a target message is what it was before endpoint messages existed (the
	// SHA-256 of {"url":...,"headers":{},"payload":...} and a newline), so records written then
	// still match their copies.
	old := Message{Target: Target{URL: okURL}, Payload: []byte(`{"a":1}`)}
	if got, want := fp(old), "eda496fdb2584835fd1c5a156e4b5bb9b8f0a39c29da56bb71668e3b6b40c2da"; got != want {
		t.Errorf("fingerprint of a target message %s, want %s as before", got, want)
	}
}

func TestEnvelopeOfEndpointMessage(t *testing.T) {
	t.Parallel()
	body, err := EncodeEnvelope(Envelope{ID: "msg_x", EndpointID: okEndpoint, Payload: []byte(`{"a": 1}`), Fingerprint: "f"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"msg_x","endpoint_id":"` + okEndpoint + `","payload":{"a": 1},"fingerprint":"f"}`
	if string(body) != want {
		t.Fatalf("envelope = %s\nwant       %s", body, want)
	}
}
