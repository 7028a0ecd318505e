package message

import (
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// Rules are the settings validation depends on. The zero value applies
// DefaultMaxPayloadBytes and allows neither http nor private targets.
type Rules struct {
	MaxPayloadBytes     int  // 0 means DefaultMaxPayloadBytes
	AllowHTTPTargets    bool // ALLOW_HTTP_TARGETS
	AllowPrivateTargets bool // ALLOW_PRIVATE_TARGETS
}

func (r Rules) maxPayload() int {
	if r.MaxPayloadBytes <= 0 {
		return DefaultMaxPayloadBytes
	}
	return r.MaxPayloadBytes
}

// MaxBodyBytes is the largest body the single-message route reads: the payload limit plus room
// for the rest of the message.
func (r Rules) MaxBodyBytes() int { return r.maxPayload() + BodyOverheadBytes }

// Parse decodes body as one message (see Decode) and validates it, returning every problem at
// once in an *InvalidError.
func (r Rules) Parse(body []byte, now time.Time) (Message, error) {
	if err := checkJSON(body); err != nil {
		return Message{}, err
	}
	var d decoder
	m := d.message(body, -1)
	ps := d.problems
	for _, p := range r.Validate(m, now) {
		if !d.failedAt(-1, p.Field) {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		sortProblems(ps)
		return m, &InvalidError{Problems: ps}
	}
	return m, nil
}

// ParseBatch decodes body as a batch (see DecodeBatch) and validates it as ValidateBatch does:
// all or nothing, every problem at once in an *InvalidError.
func (r Rules) ParseBatch(body []byte, now time.Time) ([]Message, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	var d decoder
	ms := d.batch(body)
	ps := d.problems
	if !d.failedAt(-1, "messages") {
		for _, p := range r.ValidateBatch(ms, now) {
			if !d.failedAt(p.Index, p.Field) && !d.failedAt(p.Index, "") {
				ps = append(ps, p)
			}
		}
	}
	if len(ps) > 0 {
		sortProblems(ps)
		return ms, &InvalidError{Problems: ps}
	}
	return ms, nil
}

// failedAt reports whether decoding already refused the field, or the whole message; a missing
// target.url is not reported again when decoding refused the destination given in its place.
func (d *decoder) failedAt(index int, field string) bool {
	return d.failed[fieldAt{index, field}] || d.failed[fieldAt{index, ""}] ||
		(field == "target.url" && (d.failed[fieldAt{index, "target"}] || d.failed[fieldAt{index, "endpoint_id"}] || d.failed[fieldAt{index, "event_type"}]))
}

// ValidateBatch checks a batch: 1 to MaxBatchMessages messages, each valid, and no idempotency
// key given twice. Problems carry the message's index.
func (r Rules) ValidateBatch(ms []Message, now time.Time) []Problem {
	if len(ms) == 0 {
		return []Problem{{Index: -1, Field: "messages", Reason: "must hold at least 1 message"}}
	}
	if len(ms) > MaxBatchMessages {
		return []Problem{{Index: -1, Field: "messages", Reason: fmt.Sprintf("holds %d messages; at most %d are allowed per batch", len(ms), MaxBatchMessages)}}
	}
	var ps []Problem
	seen := make(map[string]int)
	for i, m := range ms {
		for _, p := range r.Validate(m, now) {
			p.Index = i
			ps = append(ps, p)
		}
		if k := m.IdempotencyKey; k != "" {
			if first, dup := seen[k]; dup {
				ps = append(ps, Problem{Index: i, Field: "idempotency_key", Reason: fmt.Sprintf("is the same as messages[%d]'s; keys must be unique in a batch", first)})
			} else {
				seen[k] = i
			}
		}
	}
	return ps
}

// Validate checks the values of a decoded message against the rules of the README's message table and returns every
// problem found (Index -1), or none. now is the time expires_at must be after.
func (r Rules) Validate(m Message, now time.Time) []Problem {
	var ps []Problem
	add := func(field, reason string) {
		ps = append(ps, Problem{Index: -1, Field: field, Reason: reason})
	}
	hasTarget := m.Target.URL != "" || m.Target.Headers != nil
	switch {
	case m.EndpointID != "" && hasTarget:
		add("endpoint_id", "a message names one destination: give one of target, endpoint_id and event_type")
	case m.EventType != "" && (hasTarget || m.EndpointID != ""):
		add("event_type", "a message names one destination: give one of target, endpoint_id and event_type")
	case m.TenantID != "" && m.EventType == "":
		add("tenant_id", "selects the endpoints of a fan-out: give it with event_type")
	case m.EventType != "":
		if reason := CheckEventType(m.EventType); reason != "" {
			add("event_type", reason)
		}
		if reason := CheckTenantID(m.TenantID); m.TenantID != "" && reason != "" {
			add("tenant_id", reason)
		}
	case m.EndpointID != "":
		if !ValidEndpointID(m.EndpointID) {
			add("endpoint_id", "is not an endpoint id: ep_ and 26 characters, as POST /v1/endpoints answered it")
		}
	default:
		if err := r.CheckURL(m.Target.URL); err != nil {
			add("target.url", err.Error())
		}
		ps = append(ps, CheckHeaders("target.headers", m.Target.Headers)...)
	}
	switch {
	case len(m.Payload) == 0:
		add("payload", "required: the JSON value to push")
	case len(m.Payload) > r.maxPayload():
		add("payload", fmt.Sprintf("is %d bytes; at most %d are allowed", len(m.Payload), r.maxPayload()))
	}
	if k := m.IdempotencyKey; k != "" {
		if reason := CheckIdempotencyKey(k); reason != "" {
			add("idempotency_key", reason)
		}
	}
	if m.DelaySeconds < 0 || m.DelaySeconds > MaxDelaySeconds {
		add("delay_seconds", fmt.Sprintf("is %d; must be from 0 to %d", m.DelaySeconds, MaxDelaySeconds))
	}
	if m.ExpiresAt != nil && !m.ExpiresAt.After(now) {
		add("expires_at", "is not in the future")
	}
	return ps
}

// CheckHeaders checks custom request headers by the rules of target.headers (at most
// MaxHeaders, names HTTP tokens given once whatever their case, values without CR, LF or other
// control characters, no header pushfn sets itself or a hop-by-hop or framing header) and
// returns every problem (Index -1), each under field or field.<name>.
func CheckHeaders(field string, headers map[string]string) []Problem {
	var ps []Problem
	add := func(field, reason string) {
		ps = append(ps, Problem{Index: -1, Field: field, Reason: reason})
	}
	if n := len(headers); n > MaxHeaders {
		add(field, fmt.Sprintf("has %d headers; at most %d are allowed", n, MaxHeaders))
	}
	canonical := make(map[string]string, len(headers))
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		f := field + "." + name
		if reason := checkHeader(name, headers[name]); reason != "" {
			add(f, reason)
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		if other, dup := canonical[key]; dup {
			add(f, fmt.Sprintf("repeats header %q (header names are case-insensitive)", other))
		}
		canonical[key] = name
	}
	return ps
}

// CheckIdempotencyKey returns why key is not a valid idempotency key (1 to 255 printable ASCII
// characters), or "".
func CheckIdempotencyKey(key string) string {
	if key == "" || len(key) > MaxIdempotencyKeyBytes {
		return fmt.Sprintf("must be 1 to %d characters; got %d", MaxIdempotencyKeyBytes, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "must be printable ASCII (space to ~)"
		}
	}
	return ""
}

// forbiddenHeaders are the headers pushfn sets itself, and hop-by-hop or framing headers a
// caller must not control. Keys are canonical.
var forbiddenHeaders = map[string]string{
	"Host":                "is set from target.url",
	"Content-Length":      "is a framing header set by pushfn",
	"Transfer-Encoding":   "is a framing header set by pushfn",
	"Content-Encoding":    "is set by pushfn (the payload is sent as is)",
	"Content-Type":        "is set by pushfn (application/json)",
	"Connection":          "is a hop-by-hop header",
	"Keep-Alive":          "is a hop-by-hop header",
	"Proxy-Connection":    "is a hop-by-hop header",
	"Proxy-Authenticate":  "is a hop-by-hop header",
	"Proxy-Authorization": "is a hop-by-hop header",
	"Te":                  "is a hop-by-hop header",
	"Trailer":             "is a hop-by-hop header",
	"Upgrade":             "is a hop-by-hop header",
	"Expect":              "is not allowed",
	"User-Agent":          "is set by pushfn",
	"Webhook-Id":          "is a signature header set by pushfn",
	"Webhook-Timestamp":   "is a signature header set by pushfn",
	"Webhook-Signature":   "is a signature header set by pushfn",
}

// checkHeader returns why a custom header is refused, or "".
func checkHeader(name, value string) string {
	if name == "" || len(name) > MaxHeaderNameBytes {
		return fmt.Sprintf("header name must be 1 to %d characters", MaxHeaderNameBytes)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return "header name is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)"
		}
	}
	if why, ok := forbiddenHeaders[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return "header " + why
	}
	if len(value) > MaxHeaderValueBytes {
		return fmt.Sprintf("header value is longer than %d bytes", MaxHeaderValueBytes)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' {
			return "header value must not contain CR or LF"
		} else if c < 0x20 && c != '\t' || c == 0x7f {
			return "header value must not contain control characters"
		}
	}
	return ""
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
