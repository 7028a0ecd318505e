package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// Decode reads body as one message, strictly: UTF-8 JSON per RFC 8259 with no
// duplicate keys and nothing after the value, every field of the right type and no unknown
// field. It checks shape only; Rules.Validate checks values. The error is an *InvalidError
// listing every problem.
func Decode(body []byte) (Message, error) {
	if err := checkJSON(body); err != nil {
		return Message{}, err
	}
	var d decoder
	m := d.message(body, -1)
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return m, &InvalidError{Problems: d.problems}
	}
	return m, nil
}

// DecodeBatch reads body as {"messages": [...]} with the strictness of Decode. It does not
// check the number of messages; Rules.ValidateBatch does.
func DecodeBatch(body []byte) ([]Message, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	var d decoder
	ms := d.batch(body)
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return ms, &InvalidError{Problems: d.problems}
	}
	return ms, nil
}

// decoder accumulates the shape problems of one body, and remembers which fields failed so that
// validation does not complain about them a second time.
type decoder struct {
	problems []Problem
	failed   map[fieldAt]bool
}

type fieldAt struct {
	index int
	field string
}

func (d *decoder) fail(index int, field, reason string) {
	d.problems = append(d.problems, Problem{Index: index, Field: field, Reason: reason})
	if d.failed == nil {
		d.failed = make(map[fieldAt]bool)
	}
	d.failed[fieldAt{index, field}] = true
}

// object splits raw into its members, or reports that it is not an object. A null is reported
// too: callers handle null themselves where it is allowed.
func (d *decoder) object(raw []byte, index int, field, what string) (map[string]json.RawMessage, bool) {
	var members map[string]json.RawMessage
	if !IsJSONKind(raw, '{') || json.Unmarshal(raw, &members) != nil {
		d.fail(index, field, "must be "+what)
		return nil, false
	}
	return members, true
}

func (d *decoder) batch(body []byte) []Message {
	top, ok := d.object(body, -1, "", `a JSON object of the form {"messages": [...]}`)
	if !ok {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "messages" {
			d.fail(-1, k, `unknown field; a batch has only "messages"`)
		}
	}
	raw, ok := top["messages"]
	if !ok || IsJSONNull(raw) {
		d.fail(-1, "messages", "required: an array of 1 to 500 messages")
		return nil
	}
	if !IsJSONKind(raw, '[') {
		d.fail(-1, "messages", "must be an array of messages")
		return nil
	}
	// Usually every element is an object: split them all in one pass.
	var objects []map[string]json.RawMessage
	if json.Unmarshal(raw, &objects) == nil {
		ms := make([]Message, len(objects))
		for i, members := range objects {
			if members == nil {
				d.fail(i, "", "must be a JSON object (a message)")
				continue
			}
			ms[i] = d.members(members, i)
		}
		return ms
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		d.fail(-1, "messages", "must be an array of messages")
		return nil
	}
	ms := make([]Message, len(elems))
	for i, e := range elems {
		ms[i] = d.message(e, i)
	}
	return ms
}

// message decodes one message object found at index (-1 outside a batch).
func (d *decoder) message(raw []byte, index int) Message {
	members, ok := d.object(raw, index, "", "a JSON object (a message)")
	if !ok {
		return Message{}
	}
	return d.members(members, index)
}

// destinations are the members that name where a message goes; a message gives exactly one.
var destinations = []string{"target", "endpoint_id", "event_type"}

// members decodes the members of one message object found at index.
func (d *decoder) members(members map[string]json.RawMessage, index int) Message {
	var m Message
	for _, k := range slices.Sorted(maps.Keys(members)) {
		v := members[k]
		switch k {
		case "target":
			if IsJSONNull(v) {
				continue
			}
			m.Target = d.target(v, index)
		case "endpoint_id":
			if IsJSONNull(v) {
				continue
			}
			if d.str(v, &m.EndpointID, index, k) && m.EndpointID == "" {
				d.fail(index, k, "must not be empty: leave it out, or give the id POST /v1/endpoints answered")
			}
		case "event_type":
			if IsJSONNull(v) {
				continue
			}
			if d.str(v, &m.EventType, index, k) && m.EventType == "" {
				d.fail(index, k, `must not be empty: the type endpoints subscribe to, such as "order.shipped"`)
			}
		case "tenant_id":
			if IsJSONNull(v) {
				continue
			}
			if d.str(v, &m.TenantID, index, k) && m.TenantID == "" {
				d.fail(index, k, "must not be empty: leave it out to fan out to the endpoints of no tenant")
			}
		case "payload":
			if IsJSONNull(v) {
				d.fail(index, "payload", "must be a JSON value other than null")
				continue
			}
			m.Payload = json.RawMessage(bytes.TrimSpace(v))
		case "idempotency_key":
			if IsJSONNull(v) {
				continue
			}
			if !d.str(v, &m.IdempotencyKey, index, k) {
				continue
			}
			if m.IdempotencyKey == "" {
				d.fail(index, k, "must not be empty: leave it out, or give 1 to 255 printable ASCII characters")
			}
		case "delay_seconds":
			if IsJSONNull(v) {
				continue
			}
			if !IsJSONKind(v, '-') && !IsJSONKind(v, '0') || json.Unmarshal(v, &m.DelaySeconds) != nil {
				d.fail(index, k, "must be a whole number of seconds from 0 to 900")
			}
		case "expires_at":
			if IsJSONNull(v) {
				continue
			}
			var s string
			if !d.str(v, &s, index, k) {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				d.fail(index, k, `must be an RFC 3339 time such as "2026-12-01T00:00:00Z"`)
				continue
			}
			m.ExpiresAt = &t
		default:
			d.fail(index, k, "unknown field; a message has target, endpoint_id or event_type (with tenant_id), payload, idempotency_key, delay_seconds and expires_at")
		}
	}
	// Whatever a destination holds, even an empty url: one destination per message.
	var given []string
	for _, k := range destinations {
		if present(members, k) {
			given = append(given, k)
		}
	}
	switch {
	case len(given) == 0:
		d.fail(index, "target", `required: {"url": "https://..."}, or an endpoint_id or an event_type in its place`)
	case len(given) > 1:
		d.fail(index, given[1], "a message names one destination: give one of target, endpoint_id and event_type")
	}
	if present(members, "tenant_id") && !present(members, "event_type") {
		d.fail(index, "tenant_id", "selects the endpoints of a fan-out: give it with event_type")
	}
	if _, ok := members["payload"]; !ok {
		d.fail(index, "payload", "required: the JSON value to push")
	}
	return m
}

func (d *decoder) target(raw []byte, index int) Target {
	var t Target
	members, ok := d.object(raw, index, "target", `a JSON object such as {"url": "https://..."}`)
	if !ok {
		return t
	}
	for _, k := range slices.Sorted(maps.Keys(members)) {
		v := members[k]
		switch k {
		case "url":
			d.str(v, &t.URL, index, "target.url")
		case "headers":
			if IsJSONNull(v) {
				continue
			}
			hs, ok := d.object(v, index, "target.headers", "a JSON object of header names to string values")
			if !ok {
				continue
			}
			t.Headers = make(map[string]string, len(hs))
			for _, name := range slices.Sorted(maps.Keys(hs)) {
				var value string
				if d.str(hs[name], &value, index, "target.headers."+name) {
					t.Headers[name] = value
				}
			}
		default:
			d.fail(index, "target."+k, "unknown field; a target has url and headers")
		}
	}
	if _, ok := members["url"]; !ok {
		d.fail(index, "target.url", "required: an absolute https URL")
	}
	return t
}

// str decodes a JSON string into dst, or reports that v is not one.
func (d *decoder) str(v []byte, dst *string, index int, field string) bool {
	if !IsJSONKind(v, '"') || json.Unmarshal(v, dst) != nil {
		d.fail(index, field, "must be a string")
		return false
	}
	return true
}

// IsJSONKind reports whether the JSON value raw starts with c (after white space); '0' stands
// for any digit. The strict decoders of messages and endpoints check a value's kind with it before
// decoding, so that JSON's lenient conversions never apply.
func IsJSONKind(raw []byte, c byte) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return false
	}
	if c == '0' {
		return raw[0] >= '0' && raw[0] <= '9'
	}
	return raw[0] == c
}

// present reports whether members has key with a value other than null.
func present(members map[string]json.RawMessage, key string) bool {
	v, ok := members[key]
	return ok && !IsJSONNull(v)
}

// IsJSONNull reports whether the JSON value raw is null.
func IsJSONNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// CheckJSON refuses what encoding/json would let through or silently repair: an empty body,
// invalid UTF-8, duplicate object keys, nesting deeper than MaxDepth, trailing data after the
// value. The error is an *InvalidError with Malformed set. Other resources' strict decoders
// (endpoints) start with it.
func CheckJSON(body []byte) error { return checkJSON(body) }

func checkJSON(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return malformed("body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return malformed("body is not valid UTF-8")
	}
	if err := walk(body); err != nil {
		return malformed(err.Error())
	}
	return nil
}

var errTrailing = errors.New("unexpected data after the JSON value")

// walk tokenizes body once, checking syntax, nesting depth and duplicate keys.
func walk(body []byte) error {
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*frame
	for done := false; !done; {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err, dec.InputOffset())
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.object && top.wantKey {
			if _, dup := top.keys[s]; dup {
				return fmt.Errorf("duplicate key %q at offset %d", s, dec.InputOffset())
			}
			top.keys[s] = struct{}{}
			top.wantKey = false
			continue
		}
		if top != nil && top.object {
			top.wantKey = true // the next string in this object, after this value, is a key
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == MaxDepth {
				return fmt.Errorf("nested deeper than %d levels", MaxDepth)
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), wantKey: true, keys: map[string]struct{}{}})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		done = len(stack) == 0
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}

func syntaxError(err error, offset int64) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s at offset %d", se.Error(), se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("unexpected end of JSON at offset %d", offset)
	default:
		return fmt.Errorf("%s at offset %d", err.Error(), offset)
	}
}
