// Package endpoint is the model of endpoints: receivers registered once, with their own URL,
// headers, event-type filter, rate limit and signing secret, that messages are later sent to by
// id or fanned out to by event type. It holds the endpoint's fields and their validation, the
// strict decoding of the create and update bodies, event-type matching, and the secrets (their
// generation, encryption at rest and rotation), and the cache through which warm functions read
// endpoints. Standard library and the message model only.
//
// Ships in all three functions: the api and relay check that endpoints exist, the deliver
// function reads what it sends to them.
package endpoint

import (
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

// idPrefix starts every endpoint id; the rest follows the message id scheme (time-ordered).
const idPrefix = message.EndpointIDPrefix

// NewID returns a new endpoint id: "ep_" and 26 characters that sort by creation time.
func NewID(now time.Time) string { return message.NewPrefixedID(idPrefix, now) }

// ValidID reports whether id has the shape of an endpoint id pushfn issues, so ids that cannot
// exist are refused without a lookup.
func ValidID(id string) bool { return message.ValidPrefixedID(idPrefix, id) }

// Reasons an endpoint is disabled, its disabled_reason.
const (
	// ReasonManual: disabled through the API.
	ReasonManual = "manual"
	// ReasonFailing: disabled by the deliver function, every attempt to it having failed for
	// ENDPOINT_DISABLE_AFTER.
	ReasonFailing = "failing"
)

// Endpoint is a registered receiver as the API shows it. It never holds a secret.
type Endpoint struct {
	ID          string            `json:"id"`
	TenantID    string            `json:"tenant_id,omitempty"` // "" for an endpoint of no tenant
	URL         string            `json:"url"`
	Description string            `json:"description"`
	Headers     map[string]string `json:"headers"`
	// EventTypes are the types the endpoint subscribes to: exact names or "prefix.*"; none means
	// every type (see Match).
	EventTypes     []string   `json:"event_types"`
	Disabled       bool       `json:"disabled"`
	DisabledReason string     `json:"disabled_reason,omitempty"` // output only
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`     // output only
	// FailingSince is the time of the first failed attempt to the endpoint since its last
	// successful delivery (or ever); nil while it is healthy. Output only.
	FailingSince *time.Time        `json:"failing_since,omitempty"`
	RateLimit    *RateLimit        `json:"rate_limit"` // nil: no limit
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// RateLimit bounds the deliveries to one endpoint.
type RateLimit struct {
	PerSecond int `json:"per_second"`
}

// Normalized returns e as the API shows it: times in UTC, and empty maps and lists in place of
// nil ones, so every answer has the same shape.
func (e Endpoint) Normalized() Endpoint {
	if e.Headers == nil {
		e.Headers = map[string]string{}
	}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	if e.DisabledAt != nil {
		t := e.DisabledAt.UTC()
		e.DisabledAt = &t
	}
	if e.FailingSince != nil {
		t := e.FailingSince.UTC()
		e.FailingSince = &t
	}
	return e
}

// Clone returns a copy of e that shares no map, slice or pointer with it.
func (e Endpoint) Clone() Endpoint {
	e.Headers = cloneMap(e.Headers)
	e.Metadata = cloneMap(e.Metadata)
	if e.EventTypes != nil {
		e.EventTypes = append([]string{}, e.EventTypes...)
	}
	if e.DisabledAt != nil {
		t := *e.DisabledAt
		e.DisabledAt = &t
	}
	if e.FailingSince != nil {
		t := *e.FailingSince
		e.FailingSince = &t
	}
	if e.RateLimit != nil {
		r := *e.RateLimit
		e.RateLimit = &r
	}
	return e
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Record is an endpoint as it is stored: its fields, its secrets encrypted, and the version
// that conditional writes compare so concurrent updates never lose each other's changes.
type Record struct {
	Endpoint
	// Secret is the current signing secret, encrypted (see Keyring).
	Secret Sealed
	// Previous are earlier secrets that still sign until their Until, newest first (see Rotate).
	Previous []PreviousSecret
	// Version is 1 when created and grows by one with every write.
	Version int
	// WriteToken is the random token of the write that made this version: a write whose answer
	// was lost recognises its own result by it when the store's retry meets it.
	WriteToken string
}

// PreviousSecret is a rotated-out secret that keeps signing until Until.
type PreviousSecret struct {
	Sealed Sealed
	Until  time.Time
}

// Clone returns a copy of r that shares nothing with it.
func (r Record) Clone() Record {
	r.Endpoint = r.Endpoint.Clone()
	if r.Previous != nil {
		r.Previous = append([]PreviousSecret{}, r.Previous...)
	}
	return r
}
