package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/textproto"
)

// Fingerprint identifies what a message asks for, so that a replayed idempotency key can be
// told apart from a reused one: the SHA-256, in hex, of canonical JSON over the
// target URL, its headers (names canonicalized) and the payload (keys sorted, no insignificant
// whitespace); for a message to an endpoint, over the endpoint id and the payload (what the
// endpoint's URL and headers are when it is delivered is the endpoint's, not the message's); for
// a fan-out, over the event type, the tenant id and the payload.
// Delay and expiry are not part of it.
func Fingerprint(m Message) (string, error) {
	payload, err := canonicalJSON(m.Payload)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	if m.EventType != "" {
		return digest(struct {
			EventType string          `json:"event_type"`
			TenantID  string          `json:"tenant_id"`
			Payload   json.RawMessage `json:"payload"`
		}{m.EventType, m.TenantID, payload})
	}
	if m.EndpointID != "" {
		return digest(struct {
			EndpointID string          `json:"endpoint_id"`
			Payload    json.RawMessage `json:"payload"`
		}{m.EndpointID, payload})
	}
	headers := make(map[string]string, len(m.Target.Headers))
	for k, v := range m.Target.Headers {
		headers[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	return digest(struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Payload json.RawMessage   `json:"payload"`
	}{m.Target.URL, headers, payload})
}

// digest is the SHA-256, in hex, of v as JSON without HTML escaping. The shapes Fingerprint hashes
// have different keys, so a message to an endpoint never shares a target's fingerprint.
func digest(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// canonicalJSON re-encodes raw with object keys sorted and no insignificant whitespace; numbers
// keep their literal form.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
