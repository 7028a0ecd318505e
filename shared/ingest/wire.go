package ingest

import (
	"errors"
	"math"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

// Stable error codes of the API and relay responses.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeValidationFailed = "validation_failed"
	CodeKeyReused        = "idempotency_key_reused"
	CodeInProgress       = "idempotency_key_in_use"
	CodeUnavailable      = "service_unavailable"
	CodeInternal         = "internal_error"
)

// Error is the error object of every 4xx/5xx body, and of a batch item that was not accepted.
type Error struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []Detail `json:"details,omitempty"`
}

// Detail is one validation problem.
type Detail struct {
	Index  *int   `json:"index,omitempty"` // position in the batch; absent for a single message
	Field  string `json:"field"`           // path inside the message: "target.url", or "body"
	Path   string `json:"path"`            // full path: "messages[3].target.url"
	Reason string `json:"reason"`
}

// ErrorBody is the envelope of every error response: {"error": {...}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Item is one message's outcome as the batch route and the relay report it: id, status,
// idempotency key and replayed, or an error instead of a status.
type Item struct {
	ID             string         `json:"id,omitempty"`
	Status         message.Status `json:"status,omitempty"`
	IdempotencyKey string         `json:"idempotency_key,omitempty"`
	Replayed       *bool          `json:"replayed,omitempty"`
	Error          *Error         `json:"error,omitempty"`
}

// Items is the body of a batch answer: {"messages": [...]} in request order.
type Items struct {
	Messages []Item `json:"messages"`
}

// ItemOf reports r as an Item. An error carries a fixed message for its kind, never the
// underlying error's text, which may name internal resources.
func ItemOf(r Result) Item {
	if r.Err != nil {
		e := ErrorOf(r.Err)
		return Item{ID: r.ID, IdempotencyKey: r.IdempotencyKey, Error: &e}
	}
	replayed := r.Replayed
	return Item{ID: r.ID, Status: r.Status, IdempotencyKey: r.IdempotencyKey, Replayed: &replayed}
}

// ItemsOf reports every result.
func ItemsOf(rs []Result) Items {
	items := Items{Messages: make([]Item, len(rs))}
	for i, r := range rs {
		items.Messages[i] = ItemOf(r)
	}
	return items
}

// ErrorOf maps a Result's error to its public error object.
func ErrorOf(err error) Error {
	switch {
	case errors.Is(err, ErrKeyReused):
		return Error{Code: CodeKeyReused, Message: "this idempotency key was already used for a different message; use a new key"}
	case errors.Is(err, ErrInProgress):
		return Error{Code: CodeInProgress, Message: "other requests with this idempotency key are recording its message at this moment; retry after the delay given"}
	case errors.Is(err, ErrEndpointNotFound):
		return Error{Code: CodeEndpointNotFound, Message: "the message names an endpoint that does not exist"}
	case errors.Is(err, ErrUnavailable):
		return Error{Code: CodeUnavailable, Message: "the message could not be queued; retry later (with the same idempotency key, if any)"}
	default:
		return Error{Code: CodeInternal, Message: "the message could not be accepted because of an internal error"}
	}
}

// InvalidBody reports a validation failure: every problem, each with its path.
func InvalidBody(err *message.InvalidError) ErrorBody {
	e := Error{Code: CodeValidationFailed, Message: "the request body is not a valid message; see details"}
	if err.Malformed {
		e = Error{Code: CodeInvalidJSON, Message: "the request body is not well-formed UTF-8 JSON; see details"}
	}
	e.Details = make([]Detail, len(err.Problems))
	for i, p := range err.Problems {
		d := Detail{Field: p.Field, Path: p.Path(), Reason: p.Reason}
		if d.Field == "" {
			d.Field = "body"
		}
		if p.Index >= 0 {
			d.Index = &p.Index
		}
		e.Details[i] = d
	}
	return ErrorBody{Error: e}
}

// RetryAfterSeconds is the Retry-After to give for results: the longest any of them asks for,
// in whole seconds, or 0 when none asks.
func RetryAfterSeconds(rs ...Result) int {
	var d time.Duration
	for _, r := range rs {
		if r.Err != nil {
			d = max(d, r.RetryAfter)
		}
	}
	return int(math.Ceil(d.Seconds()))
}
