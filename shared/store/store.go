// Package store keeps one record per message and moves it between states with
// conditional writes, so that concurrent api and deliver functions never overwrite each other;
// and, in the same table, one item per endpoint (Endpoints), listed through two secondary
// indexes, one of which also lists an endpoint's deliveries (Deliveries). DynamoDB is the production implementation; Memory and MemoryEndpoints have the same
// semantics for unit tests and benchmarks; storetest is the conformance suite both pass.
//
// Ships in all three functions.
package store

import (
	"context"
	"errors"
	"strings"
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
	// taken over, or the record moved on). The record carried may still be waiting for delivery.
	ErrLeaseLost = errors.New("lease lost")
	// ErrStale: the copy's fingerprint is not the record's: the record now belongs to another
	// message accepted under the same key, so the copy must be neither sent nor recorded.
	ErrStale = errors.New("copy is not of the record's message")
	// ErrNotAccepted: Delete found the record past accepted, so it was left alone.
	ErrNotAccepted = errors.New("message record is past accepted")
	// ErrReplayed: Delete found the record marked by a replay that queued a copy, so it was left
	// alone.
	ErrReplayed = errors.New("message record was replayed")
	// ErrReplaced: MarkReplayed found a record written by another create than the one given (the
	// record seen was removed and the id recorded again since).
	ErrReplaced = errors.New("message record was replaced")
	// ErrNotFinal: Reopen found the record still live (accepted and never reopened, delivering or
	// retrying): it will be delivered, or end, without a reopen.
	ErrNotFinal = errors.New("message record is not final")
	// ErrDelivered: Reopen found the record delivered: there is nothing to deliver again.
	ErrDelivered = errors.New("message record was delivered")
	// ErrNoCopy: Reopen found the record failed or expired but with no copy kept (it ended before
	// copies were kept, by a malformed copy, or with a copy too large to keep).
	ErrNoCopy = errors.New("message record keeps no copy")
)

// ConflictError carries the record found when a conditional write failed, read from the same
// write (DynamoDB's ReturnValuesOnConditionCheckFailure), never from an extra read. It wraps one
// of ErrExists, ErrFinal, ErrLeased, ErrLeaseLost, ErrStale, ErrNotAccepted, ErrReplayed,
// ErrReplaced, ErrNotFinal, ErrDelivered or ErrNoCopy.
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
	// Token identifies this lease holder; Finish must present it. It must be unique to one
	// claim: a claim whose token the record already holds is taken as this claim's own earlier
	// write (applied, its answer lost) and succeeds again.
	Token string
	// Fingerprint is the fingerprint carried by the copy being delivered. When set, the claim
	// applies only to a record with that fingerprint (else ErrStale): a copy left over from an
	// earlier message under the same key is never sent in place of the record's own.
	Fingerprint string
	// New, when set, is the record to make when none has the id: its MessageID, EndpointID,
	// Fingerprint, TargetHost, CreatedAt and ExpiresAt are written with the claim. Only a
	// delivery of a fan-out has one; every other record is made by Create.
	New *message.Record
}

// Progress is how far the expansion of a fan-out has come: the position its listing of
// endpoints goes on from and how many deliveries it queued before that position.
type Progress struct {
	Now        time.Time
	Token      string // the lease of the expansion (its Claim's token)
	Cursor     string
	Deliveries int
	// Matched is, for a recovery, how many failed deliveries it has found so far.
	Matched int
	// Release ends the lease with the write, so that the next copy of the message to be
	// received takes the expansion over at once: the invocation stops short of its deadline.
	// It gives back the attempt the lease's claim counted (a pause is no failed attempt), so
	// that only claims that ended without one (a worker that died) count toward MAX_ATTEMPTS.
	// It applies only while the lease is still live.
	Release bool
}

// Outcome is the result of a delivery, or the end of a message that was never claimed.
type Outcome struct {
	Now    time.Time
	Status message.Status // Delivered, Retrying, Failed or Expired
	// Token is the Claim's token; empty for a record that was not claimed. A finish under a
	// token the record names as its finisher (Record.FinishedBy) is this finish's own earlier
	// write and succeeds again.
	Token   string
	Attempt *message.Attempt // the attempt made, if any
	// Fingerprint, for a write without a token, is the fingerprint of the copy it comes from;
	// when set, the write applies only to a record with that fingerprint (else ErrStale).
	Fingerprint string
	// New, for a write without a token, is the record to make when none has the id (see
	// Claim.New): a delivery of a fan-out that ends before its first claim.
	New *message.Record
	// Fanout, with a token, records the end of a fan-out's expansion: its final position and
	// number of deliveries.
	Fanout *Progress
	// Keep, with Status Failed or Expired, is the queued copy of the message (the SQS message
	// body as received) for the record to keep, compressed, so that Reopen can deliver it again.
	// A copy over MaxKeptCopyBytes once compressed is not kept. A write that ends Delivered
	// removes any copy kept before.
	Keep []byte
}

// Reopen asks for a failed or expired record to be made accepted again, to deliver its copy anew.
type Reopen struct {
	Now time.Time
	// Token identifies this reopen: a record already reopened under it is this reopen's own
	// earlier write (applied, its answer lost).
	Token string
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

	// Claim takes a lease when the record is accepted or retrying, delivering with a lease
	// that ended before c.Now, or failed because its copy was dead-lettered (its last attempt's
	// error begins with message.ReasonDeadLettered: the copy was redriven), and has
	// c.Fingerprint when that is set; or, when c.New is set, when no record has the id: it
	// then writes the record c.New describes (the first claim of a fan-out's delivery makes its
	// record). It sets status Delivering,
	// the lease and token, counts one attempt and returns the record as written. A record already
	// leased under c.Token is this claim applied once already: it is returned as it is, with no
	// error. Otherwise it returns a *ConflictError with the record as found, wrapping ErrFinal,
	// ErrStale or ErrLeased (checked in that order), or ErrNotFound.
	Claim(ctx context.Context, id string, c Claim) (message.Record, error)

	// Finish records o. With a token it requires the record to be delivering under that token
	// (else a *ConflictError wrapping ErrLeaseLost), unless the record names that token as its
	// finisher: then this finish was applied once already and the record is returned as it is,
	// with no error. Without a token it requires the record to be neither final (ErrFinal) nor
	// leased until o.Now or later (ErrLeased), and to have o.Fingerprint when that is set
	// (ErrStale), so a write no claim preceded never overwrites a live lease or another message.
	// With o.New, a missing record is made as Claim.New describes, instead of ErrNotFound.
	// It clears the lease, names o.Token as the finisher, sets DeliveredAt when o.Status is
	// Delivered and returns the record as written, or ErrNotFound.
	Finish(ctx context.Context, id string, o Outcome) (message.Record, error)

	// Checkpoint records p, the progress of the fan-out expansion holding the lease p.Token: it
	// requires the record to be delivering under that token (else a *ConflictError wrapping
	// ErrLeaseLost), unless the record already holds exactly p (this write, applied once
	// before). It returns the record as written, or ErrNotFound.
	Checkpoint(ctx context.Context, id string, p Progress) (message.Record, error)

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

	// Reopen makes a record that ended failed or expired, and keeps a copy, accepted again with
	// no attempt counted: its last attempt joins its History (the oldest dropped past
	// message.MaxHistory), its lease and finisher are cleared, and r's token and time are
	// recorded as its ReopenToken and ReopenedAt. It returns the record as written, with its
	// Copy, which the caller then queues. An accepted record that was reopened before (by this
	// reopen, whose answer was lost, or by another whose queue send may have failed) is returned
	// as it is with no error, so the caller queues its copy again: delivery deduplicates copies
	// by their claim. Otherwise it returns a *ConflictError with the record as found, wrapping
	// ErrDelivered, ErrNoCopy or ErrNotFinal, or ErrNotFound.
	Reopen(ctx context.Context, id string, r Reopen) (message.Record, error)
}

// DefaultTTL is how long a record is kept after its last change when not configured otherwise.
const DefaultTTL = 7 * 24 * time.Hour

// reopenReason is why Reopen refuses rec, or nil when rec may be reopened (failed or expired,
// with a copy) or was reopened and not yet claimed (returned as it is).
func reopenReason(rec message.Record) error {
	switch {
	case rec.Status == message.Delivered:
		return ErrDelivered
	case rec.Status == message.Failed || rec.Status == message.Expired:
		if rec.Copy == nil {
			return ErrNoCopy
		}
		return nil
	case rec.Status == message.Accepted && !rec.ReopenedAt.IsZero():
		return nil
	}
	return ErrNotFinal
}

// deadLettered reports whether rec failed because its copy went to the dead-letter queue.
func deadLettered(rec message.Record) bool {
	return rec.Status == message.Failed && rec.LastAttempt != nil && strings.HasPrefix(rec.LastAttempt.Error, message.ReasonDeadLettered)
}
