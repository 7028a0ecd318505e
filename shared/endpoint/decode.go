package endpoint

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

// Patch is an update of an endpoint with JSON merge patch semantics (RFC 7396): only the
// fields given change; null clears an optional field; within headers and metadata, a name given
// a string sets it and a name given null removes it. The zero Patch changes nothing.
type Patch struct {
	tenantID, url, description field[string]
	disabled                   field[bool]
	eventTypes                 field[[]string]
	rateLimit                  field[int]
	headers, metadata          mapPatch
}

type field[T any] struct {
	given, null bool
	value       T
}

type mapPatch struct {
	given, null bool
	set         map[string]*string // nil value: remove the name
}

// Create is a decoded create body: the endpoint's fields and the secret, when one was given.
type Create struct {
	Endpoint Endpoint
	Secret   *Secret
}

// ParseCreate decodes and validates the body of POST /v1/endpoints: a JSON object with url
// (required) and optionally tenant_id, description, headers, event_types, disabled,
// rate_limit, metadata and secret; anything else is refused. It returns every problem at once in
// an *message.InvalidError. The endpoint has no id or times yet; disabled_at is now when it is
// created disabled.
func ParseCreate(body []byte, r message.Rules, now time.Time) (Create, error) {
	if err := message.CheckJSON(body); err != nil {
		return Create{}, err
	}
	d := decoder{create: true}
	p := d.patch(body)
	if !p.url.given || p.url.null {
		if !d.failedAt("url") {
			d.fail("url", "required: an absolute https URL")
		}
	}
	e := p.Apply(Endpoint{}, now)
	for _, pr := range Validate(e, r) {
		if !d.failedAt(pr.Field) {
			d.problems = append(d.problems, pr)
		}
	}
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return Create{Endpoint: e}, &message.InvalidError{Problems: d.problems}
	}
	return Create{Endpoint: e, Secret: d.secret}, nil
}

// ParsePatch decodes the body of PATCH /v1/endpoints/{id} strictly, as ParseCreate does, but
// checks shape only: Apply the patch to the endpoint, then Validate the result. secret is
// refused (rotate it instead), as are the fields only the server sets.
func ParsePatch(body []byte) (Patch, error) {
	if err := message.CheckJSON(body); err != nil {
		return Patch{}, err
	}
	var d decoder
	p := d.patch(body)
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return p, &message.InvalidError{Problems: d.problems}
	}
	return p, nil
}

// Apply returns e with p applied at now. Disabling sets disabled_reason "manual" and
// disabled_at now; enabling clears both, and failing_since: a re-enabled endpoint starts
// healthy, its failing time counted again from its next failed attempt. UpdatedAt is the
// caller's to set.
func (p Patch) Apply(e Endpoint, now time.Time) Endpoint {
	e = e.Clone()
	if p.tenantID.given {
		e.TenantID = p.tenantID.value
	}
	if p.url.given {
		e.URL = p.url.value
	}
	if p.description.given {
		e.Description = p.description.value
	}
	if p.eventTypes.given {
		e.EventTypes = p.eventTypes.value
	}
	if p.rateLimit.given {
		e.RateLimit = nil
		if !p.rateLimit.null {
			e.RateLimit = &RateLimit{PerSecond: p.rateLimit.value}
		}
	}
	e.Headers = p.headers.apply(e.Headers)
	e.Metadata = p.metadata.apply(e.Metadata)
	if p.disabled.given && p.disabled.value != e.Disabled {
		e.Disabled = p.disabled.value
		e.DisabledReason, e.DisabledAt = "", nil
		if !e.Disabled {
			e.FailingSince = nil
		}
		if e.Disabled {
			t := now
			e.DisabledReason, e.DisabledAt = ReasonManual, &t
		}
	}
	return e
}

func (m mapPatch) apply(cur map[string]string) map[string]string {
	if !m.given {
		return cur
	}
	if m.null {
		return nil
	}
	if cur == nil {
		cur = map[string]string{}
	}
	for k, v := range m.set {
		if v == nil {
			delete(cur, k)
		} else {
			cur[k] = *v
		}
	}
	if len(cur) == 0 {
		return nil
	}
	return cur
}

// decoder accumulates the shape problems of one body, remembering which fields failed so
// validation does not report them twice.
type decoder struct {
	create   bool // a create body: secret allowed, null header and metadata values refused
	secret   *Secret
	problems []message.Problem
	failed   map[string]bool
}

func (d *decoder) fail(field, reason string) {
	d.problems = append(d.problems, message.Problem{Index: -1, Field: field, Reason: reason})
	if d.failed == nil {
		d.failed = map[string]bool{}
	}
	d.failed[field] = true
}

// failedAt reports whether decoding refused field or the object holding it.
func (d *decoder) failedAt(field string) bool {
	if d.failed[""] {
		return true // the body is not an object at all
	}
	for f := range d.failed {
		if field == f || len(field) > len(f) && field[:len(f)] == f && (field[len(f)] == '.' || field[len(f)] == '[') {
			return true
		}
	}
	return false
}

const fieldsList = "url, tenant_id, description, headers, event_types, disabled, rate_limit and metadata"

func (d *decoder) patch(body []byte) Patch {
	var p Patch
	members, ok := object(body)
	if !ok {
		d.fail("", "must be a JSON object of endpoint fields ("+fieldsList+")")
		return p
	}
	for _, k := range slices.Sorted(maps.Keys(members)) {
		v := members[k]
		null := message.IsJSONNull(v)
		switch k {
		case "tenant_id":
			d.optString(&p.tenantID, k, v)
			if p.tenantID.given && !p.tenantID.null && p.tenantID.value == "" {
				d.fail(k, "must not be empty: leave it out (or null) for no tenant")
			}
		case "url":
			if null {
				d.fail(k, "required: an absolute https URL (it cannot be removed)")
				continue
			}
			d.optString(&p.url, k, v)
		case "description":
			d.optString(&p.description, k, v)
		case "disabled":
			p.disabled.given = true
			if !null && (!message.IsJSONKind(v, 't') && !message.IsJSONKind(v, 'f') || json.Unmarshal(v, &p.disabled.value) != nil) {
				d.fail(k, "must be true or false")
			}
		case "event_types":
			p.eventTypes.given, p.eventTypes.null = true, null
			if null {
				continue
			}
			var list []json.RawMessage
			if !message.IsJSONKind(v, '[') || json.Unmarshal(v, &list) != nil {
				d.fail(k, `must be an array of event types such as ["order.shipped", "order.*"]`)
				continue
			}
			if len(list) > 0 {
				p.eventTypes.value = make([]string, len(list))
			}
			for i, raw := range list {
				if !message.IsJSONKind(raw, '"') || json.Unmarshal(raw, &p.eventTypes.value[i]) != nil {
					d.fail("event_types["+strconv.Itoa(i)+"]", "must be a string")
				}
			}
		case "rate_limit":
			p.rateLimit.given, p.rateLimit.null = true, null
			if null {
				continue
			}
			rl, ok := object(v)
			if !ok {
				d.fail(k, `must be an object such as {"per_second": 50}, or null for no limit`)
				continue
			}
			for _, rk := range slices.Sorted(maps.Keys(rl)) {
				if rk != "per_second" {
					d.fail("rate_limit."+rk, "unknown field; a rate_limit has per_second")
				}
			}
			ps, ok := rl["per_second"]
			if !ok || message.IsJSONNull(ps) {
				d.fail("rate_limit.per_second", "required: deliveries per second, from 1 to 10000")
				continue
			}
			if !message.IsJSONKind(ps, '0') && !message.IsJSONKind(ps, '-') || json.Unmarshal(ps, &p.rateLimit.value) != nil {
				d.fail("rate_limit.per_second", "must be a whole number from 1 to 10000")
			}
		case "headers":
			d.stringMap(&p.headers, k, v, "header names to string values")
		case "metadata":
			d.stringMap(&p.metadata, k, v, "keys to string values")
		case "secret":
			if !d.create {
				d.fail(k, "cannot be changed here: POST /v1/endpoints/{id}/secret/rotate")
				continue
			}
			if !null {
				d.secret = d.secretValue(k, v)
			}
		case "id", "created_at", "updated_at", "disabled_reason", "disabled_at", "failing_since":
			d.fail(k, "is set by pushfn and cannot be given")
		default:
			reason := "unknown field; an endpoint has " + fieldsList
			if d.create {
				reason += ", and secret at creation"
			}
			d.fail(k, reason)
		}
	}
	return p
}

func (d *decoder) optString(f *field[string], name string, v []byte) {
	f.given, f.null = true, message.IsJSONNull(v)
	if f.null {
		return
	}
	if !message.IsJSONKind(v, '"') || json.Unmarshal(v, &f.value) != nil {
		d.fail(name, "must be a string")
	}
}

func (d *decoder) stringMap(m *mapPatch, name string, v []byte, what string) {
	m.given, m.null = true, message.IsJSONNull(v)
	if m.null {
		return
	}
	members, ok := object(v)
	if !ok {
		d.fail(name, "must be a JSON object of "+what)
		return
	}
	m.set = make(map[string]*string, len(members))
	for _, k := range slices.Sorted(maps.Keys(members)) {
		raw := members[k]
		if message.IsJSONNull(raw) && !d.create {
			m.set[k] = nil
			continue
		}
		var s string
		if !message.IsJSONKind(raw, '"') || json.Unmarshal(raw, &s) != nil {
			reason := "must be a string"
			if !d.create {
				reason += " (or null to remove it)"
			}
			d.fail(name+"."+k, reason)
			continue
		}
		m.set[k] = &s
	}
}

// object splits raw into its members, or reports that it is not a JSON object.
func object(raw []byte) (map[string]json.RawMessage, bool) {
	var members map[string]json.RawMessage
	if !message.IsJSONKind(raw, '{') || json.Unmarshal(raw, &members) != nil {
		return nil, false
	}
	return members, true
}

func sortProblems(ps []message.Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Field < ps[j].Field })
}

// ParseRotate decodes the optional body of POST /v1/endpoints/{id}/secret/rotate: empty (a new
// secret is generated: nil is returned), or {"key": "whsec_..."} naming the new secret, strictly.
func ParseRotate(body []byte) (*Secret, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if err := message.CheckJSON(body); err != nil {
		return nil, err
	}
	var d decoder
	members, ok := object(body)
	if !ok {
		d.fail("", `must be a JSON object such as {"key": "whsec_..."}, or no body to generate a secret`)
	}
	var next *Secret
	for _, k := range slices.Sorted(maps.Keys(members)) {
		v := members[k]
		if k != "key" {
			d.fail(k, "unknown field; a rotation has key only")
			continue
		}
		if !message.IsJSONNull(v) {
			next = d.secretValue(k, v)
		}
	}
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, &message.InvalidError{Problems: d.problems}
	}
	return next, nil
}

// secretValue reads the value v of field k as a secret, or records why it is not one and returns
// nil.
func (d *decoder) secretValue(k string, v json.RawMessage) *Secret {
	var s string
	if !message.IsJSONKind(v, '"') || json.Unmarshal(v, &s) != nil {
		d.fail(k, "must be a string: whsec_ followed by base64")
		return nil
	}
	sec, err := ParseSecret(s)
	if err != nil {
		d.fail(k, "must be whsec_ followed by standard base64 of 24 to 64 bytes")
		return nil
	}
	return &sec
}
