// Package message is pushfn's domain model: the message a caller submits, the record kept for
// it, its states and its identity. It imports only the standard library; every other package
// builds on it.
//
// Ships in all three functions.
package message

import (
	"encoding/json"
	"time"
)

// Target is where a message is pushed: an absolute URL and optional extra request headers.
type Target struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Message is what a caller submits. It names exactly one destination: a Target, the
// EndpointID of an endpoint registered before (its URL, headers and secrets are the endpoint's),
// or an EventType: a fan-out to every endpoint of TenantID ("" for the endpoints of no tenant)
// subscribed to that type.
type Message struct {
	Target         Target          `json:"target,omitzero"`
	EndpointID     string          `json:"endpoint_id,omitempty"`
	EventType      string          `json:"event_type,omitempty"`
	TenantID       string          `json:"tenant_id,omitempty"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	DelaySeconds   int             `json:"delay_seconds,omitempty"`
	ExpiresAt      *time.Time      `json:"expires_at,omitempty"`
}

// Envelope is the body of the SQS message for one accepted message: everything the deliver
// function needs, so delivery reads nothing from DynamoDB.
type Envelope struct {
	ID     string `json:"id"`
	Target Target `json:"target,omitzero"`
	// EndpointID, in place of Target, names the endpoint the message goes to: the deliver
	// function reads its URL, headers and secrets (never carried in a queue message) itself.
	EndpointID string `json:"endpoint_id,omitempty"`
	// EventType, in place of Target, makes the copy a fan-out's expansion: the deliver function
	// queues one delivery copy for every endpoint of TenantID subscribed to the type.
	EventType string `json:"event_type,omitempty"`
	TenantID  string `json:"tenant_id,omitempty"`
	// MessageID is set in the copy of one delivery of a fan-out, whose ID is the delivery's
	// (DeliveryID): the message the delivery belongs to, the webhook-id its endpoint receives.
	// CreatedAt is that message's acceptance, which the delivery's record keeps.
	MessageID string `json:"message_id,omitempty"`
	// Since and Until are set in the copy of a recovery (ID a recovery id, EndpointID its
	// endpoint): the window of the endpoint's deliveries it sends again.
	Since     *time.Time      `json:"since,omitempty"`
	Until     *time.Time      `json:"until,omitempty"`
	CreatedAt *time.Time      `json:"created_at,omitempty"`
	Payload   json.RawMessage `json:"payload"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	// Fingerprint binds this copy to the record it was queued for: the record's fingerprint
	// when the copy was made. A copy whose fingerprint is not its record's must never be sent in
	// its place. Empty only in copies queued before copies carried it.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Slot and SlotRate, on a copy re-queued to wait for its endpoint's rate limit, are the send
	// slot it holds and the rate its numbering was made at; SlotRate 0 means no slot.
	Slot     int64 `json:"slot,omitempty"`
	SlotRate int   `json:"slot_rate,omitempty"`
}

// Status is the state of a message's delivery.
type Status string

// The states a message moves through.
const (
	Accepted   Status = "accepted"
	Delivering Status = "delivering"
	Delivered  Status = "delivered"
	Retrying   Status = "retrying"
	Failed     Status = "failed"
	Expired    Status = "expired"
)

// ReasonDeadLettered begins the error of the last attempt of a message whose copy went to the
// dead-letter queue: its record is failed, yet a copy redriven from that queue may claim it again.
const ReasonDeadLettered = "dead_lettered"

// The errors of the last attempt of a message to an endpoint that ended before any attempt:
// the endpoint was disabled, or deleted, when its delivery came.
const (
	ReasonEndpointDisabled = "endpoint_disabled"
	ReasonEndpointDeleted  = "endpoint_deleted"
	// ReasonEndpointUnreadable: the endpoint was read, but its secret does not decrypt under
	// the function's key, or its item is malformed.
	ReasonEndpointUnreadable = "endpoint_unreadable"
)

// EndpointIDPrefix starts every endpoint id; the rest follows the message id scheme.
const EndpointIDPrefix = "ep_"

// ValidEndpointID reports whether id has the shape of an endpoint id pushfn issues.
func ValidEndpointID(id string) bool { return ValidPrefixedID(EndpointIDPrefix, id) }

// Final reports whether no further delivery attempt may follow s.
func (s Status) Final() bool {
	return s == Delivered || s == Failed || s == Expired
}

// Attempt describes one delivery attempt.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// Record is the stored state of one message: one DynamoDB item (the README's data model). The payload
// travels in the queue; the record keeps a copy of it (Copy) only once its delivery has ended
// failed or expired, so that it can be delivered again.
type Record struct {
	ID             string
	Status         Status
	Fingerprint    string
	IdempotencyKey string // empty when the caller gave none
	TargetHost     string // the host of the target URL, or of the endpoint's URL at acceptance
	EndpointID     string // the endpoint the message or delivery goes to; empty for a target
	// MessageID is set in the record of one delivery of a fan-out (ID a DeliveryID): the message
	// it belongs to.
	MessageID string
	// EventType and TenantID are set in the record of a fan-out message.
	EventType string
	TenantID  string
	// FanoutCursor is where the expansion of a fan-out goes on (a position in its listing of
	// endpoints, "" at the start), and FanoutDeliveries how many deliveries it has queued
	// before that position; once the record is delivered, the fan-out's number of deliveries.
	FanoutCursor     string
	FanoutDeliveries int
	// A recovery's record (ID a recovery id) keeps its window, its endpoint (EndpointID) and its
	// progress: FanoutCursor is where its listing of the endpoint's deliveries goes on,
	// FanoutDeliveries how many it requeued, Matched how many failed deliveries it found.
	RecoverSince, RecoverUntil time.Time
	Matched                    int
	Attempts                   int
	LeaseToken                 string    // set while a worker holds the lease
	LeaseUntil                 time.Time // zero when no lease is held
	FinishedBy                 string    // the token of the lease the last claimed result write ended
	LastAttempt                *Attempt
	CreatedAt                  time.Time
	UpdatedAt                  time.Time
	DeliveredAt                time.Time  // zero until delivered
	ExpiresAt                  *time.Time // the message's own expiry, if any
	TTL                        time.Time  // when DynamoDB may delete the record; set by the store on every write

	// CreateToken is the random token of the create that wrote the record: a create whose answer
	// was lost recognises its own write by it, and only that create's undo may remove the record.
	CreateToken string
	// Replayed is set once a replay has queued a copy of the message while this record existed,
	// so the undo of the request that created it leaves it in place.
	Replayed bool

	// Copy is the queued copy of the message (the SQS message body: its envelope exactly as it
	// was queued), kept by the write that ended the record failed or expired, so that it can be
	// queued again; nil while it is live, once delivered, or when none was kept.
	Copy []byte
	// History holds the last attempts of the deliveries the record ended before it was reopened,
	// oldest first (at most MaxHistory).
	History []Attempt
	// ReopenToken and ReopenedAt are those of the last reopen, which made a failed or expired
	// record accepted again to deliver its Copy anew.
	ReopenToken string
	ReopenedAt  time.Time
}

// MaxHistory is how many earlier last attempts a record keeps in its History; a reopen past it
// drops the oldest.
const MaxHistory = 20
