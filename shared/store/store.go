// Package store keeps one record per message and moves it between states with
// conditional writes, so that concurrent api and deliver functions never overwrite each other.
// DynamoDB is the production implementation; Memory has the same semantics for unit tests and
// benchmarks; storetest is the conformance suite both pass.
//
// Ships in all three functions.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

// Errors a Store reports. Test them with errors.Is.
var (
	// ErrNotFound: no record has the id.
	ErrNotFound = errors.New("message record not found")
	// ErrExists: Create found a record with the id already; see ExistsError.
	ErrExists = errors.New("message record already exists")
	// ErrFinal: Claim found the record in a final state; nothing must be sent.
	ErrFinal = errors.New("message already in a final state")
	// ErrLeased: Claim found a live lease held by another worker.
	ErrLeased = errors.New("message leased by another worker")
	// ErrLeaseLost: Finish found that the caller no longer holds the lease (it ran out and was
	// taken over, or the record moved on).
	ErrLeaseLost = errors.New("lease lost")
	// ErrNotAccepted: Delete found the record past accepted, so it was left alone.
	ErrNotAccepted = errors.New("message record is past accepted")
	// ErrReplayed: Delete found the record marked by a replay that queued a copy, so it was left
	// alone.
	ErrReplayed = errors.New("message record was replayed")
	// ErrReplaced: MarkReplayed found a record written by another create than the one given (the
	// record seen was removed and the id recorded again since).
	ErrReplaced = errors.New("message record was replaced")
)

// ConflictError carries the record found when a conditional write failed, read from the same
// write (DynamoDB's ReturnValuesOnConditionCheckFailure), never from an extra read. It wraps one
// of ErrExists, ErrFinal, ErrLeased, ErrLeaseLost, ErrNotAccepted, ErrReplayed or ErrReplaced.
type ConflictError struct {
	Err    error
	Record message.Record
}

func (e *ConflictError) Error() string { return e.Err.Error() + ": " + e.Record.ID }

func (e *ConflictError) Unwrap() error { return e.Err }

// Claim asks for a delivery lease on a record.
type Claim struct {
	Now   time.Time
	Lease time.Duration // how long the lease lasts from Now
	Token string        // identifies this lease holder; Finish must present it
}

// Outcome is the result of a delivery, or the end of a message that was never claimed.
type Outcome struct {
	Now     time.Time
	Status  message.Status   // Delivered, Retrying, Failed or Expired
	Token   string           // the Claim's token; empty for a record that was not claimed
	Attempt *message.Attempt // the attempt made, if any
}

// Store is the contract of a message record store. Every method is one conditional write or one
// read; every write sets the record's TTL to the write's time plus the store's record TTL.
type Store interface {
	// Create writes rec (status Accepted) if no record has its id. Otherwise it returns a
	// *ConflictError wrapping ErrExists that carries the existing record, unless that record
	// carries rec's non-empty CreateToken: then it was written by this very create (its answer
	// was lost and the SDK's retry met the condition the write made true), and Create returns nil.
	Create(ctx context.Context, rec message.Record) error

	// Get returns the record with id, or ErrNotFound.
	Get(ctx context.Context, id string) (message.Record, error)

	// Claim takes a lease when the record is accepted or retrying, or delivering with a lease
	// that ended before c.Now. It sets status Delivering, the lease and token, counts one attempt
	// and returns the record as written. Otherwise it returns a *ConflictError wrapping ErrFinal or
	// ErrLeased with the record as found, or ErrNotFound.
	Claim(ctx context.Context, id string, c Claim) (message.Record, error)

	// Finish records o. With a token it requires the record to be delivering under that token
	// (else a *ConflictError wrapping ErrLeaseLost); without one it requires the record not to be
	// final (else ErrFinal). It clears the lease, sets DeliveredAt when o.Status is Delivered and
	// returns the record as written, or ErrNotFound.
	Finish(ctx context.Context, id string, o Outcome) (message.Record, error)

	// Delete removes the record written by the create that carried createToken, while it is
	// still accepted and no replay has marked it: the api's undo when it could not queue the
	// message. Past accepted it returns a *ConflictError wrapping ErrNotAccepted, marked one
	// wrapping ErrReplayed (either way a copy exists, so the message will be delivered). A missing
	// record, or one another create wrote, is not an error: that create's record is gone already.
	Delete(ctx context.Context, id, createToken string) error

	// MarkReplayed sets Replayed on the record written by the create that carried createToken,
	// whatever its status, and returns the record as written: a replay's promise that it queued
	// a copy while this record existed, so that no undo removes the record. A record another
	// create wrote gives a *ConflictError wrapping ErrReplaced; a missing one, ErrNotFound.
	MarkReplayed(ctx context.Context, id, createToken string, now time.Time) (message.Record, error)
}

// DefaultTTL is how long a record is kept after its last change when not configured otherwise.
const DefaultTTL = 7 * 24 * time.Hour
