package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// Reopener reopens a record that ended failed or expired; store.Store implements it.
type Reopener interface {
	Reopen(ctx context.Context, id string, r store.Reopen) (message.Record, error)
}

var _ Reopener = store.Store(nil)

// Error codes of POST /v1/messages/{id}/retry.
const (
	CodeNotFinal  = "not_final"
	CodeDelivered = "delivered"
	CodeNoCopy    = "no_copy"
)

// maxRetryBodyBytes bounds the body of a retry: {"endpoint_id": "ep_..."} and white space.
const maxRetryBodyBytes = 4096

// ParseRetry decodes the optional body of POST /v1/messages/{id}/retry: empty (the message's own
// record), or {"endpoint_id": "ep_..."} naming one delivery of a fan-out, strictly (unknown
// fields and values of another kind are refused). The error is a *message.InvalidError.
func ParseRetry(body []byte) (endpointID string, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	if err := message.CheckJSON(body); err != nil {
		return "", err
	}
	var members map[string]json.RawMessage
	if !message.IsJSONKind(body, '{') || json.Unmarshal(body, &members) != nil {
		return "", &message.InvalidError{Problems: []message.Problem{{Index: -1, Reason: `must be a JSON object such as {"endpoint_id": "ep_..."}, or no body`}}}
	}
	var problems []message.Problem
	for _, k := range slices.Sorted(maps.Keys(members)) {
		v := members[k]
		switch {
		case k != "endpoint_id":
			problems = append(problems, message.Problem{Index: -1, Field: k, Reason: "unknown field; a retry has endpoint_id only"})
		case message.IsJSONNull(v):
		case !message.IsJSONKind(v, '"') || json.Unmarshal(v, &endpointID) != nil || !message.ValidEndpointID(endpointID):
			endpointID = ""
			problems = append(problems, message.Problem{Index: -1, Field: k, Reason: "must be an endpoint id (ep_ followed by 26 characters)"})
		}
	}
	if len(problems) > 0 {
		return "", &message.InvalidError{Problems: problems}
	}
	return endpointID, nil
}

// retry reopens message id's record (or, with an endpoint id in the body, its delivery to that
// endpoint) that ended failed or expired, and queues the copy the record kept.
func (h *Handler) retry(ctx context.Context, req events.APIGatewayV2HTTPRequest, id, prefix string) events.APIGatewayV2HTTPResponse {
	notFound := reply(http.StatusNotFound, errorBody(CodeNotFound, "no message with this id"), nil)
	if !message.ValidID(id) {
		return notFound
	}
	var body []byte
	if strings.TrimSpace(req.Body) != "" {
		b, failed := readBody(req, maxRetryBodyBytes)
		if failed != nil {
			return *failed
		}
		body = b
	}
	epID, err := ParseRetry(body)
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		r := ingest.InvalidBody(invalid)
		if !invalid.Malformed {
			r.Error.Message = "the retry is not valid; see details"
		}
		return reply(http.StatusBadRequest, r, nil)
	} else if err != nil {
		return h.retryInternal(ctx, id, err)
	}
	recordID := id
	if epID != "" {
		recordID = message.DeliveryID(id, epID)
		notFound = reply(http.StatusNotFound, errorBody(CodeNotFound,
			"no delivery of this message to this endpoint: the message is not a fan-out, the endpoint was not one of its deliveries, or the delivery has not started"), nil)
	}

	var tok [16]byte
	_, _ = rand.Read(tok[:])
	rec, err := h.Reopener.Reopen(ctx, recordID, store.Reopen{Now: h.nowMillis(), Token: hex.EncodeToString(tok[:])})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case errors.Is(err, store.ErrNotFinal):
		return reply(http.StatusConflict, errorBody(CodeNotFinal, "the message is still being delivered (accepted, delivering or retrying); retry it once it has failed or expired"), nil)
	case errors.Is(err, store.ErrDelivered):
		msg := "the message was delivered; there is nothing to retry"
		if epID == "" {
			msg += " (for one delivery of a fan-out, give its endpoint_id)"
		}
		return reply(http.StatusConflict, errorBody(CodeDelivered, msg), nil)
	case errors.Is(err, store.ErrNoCopy):
		return reply(http.StatusConflict, errorBody(CodeNoCopy, "no copy of the message was kept when it ended (it ended before copies were kept, its copy was malformed or too large), so it cannot be sent again; accept it anew"), nil)
	case errors.Is(err, store.ErrMalformed):
		return h.retryInternal(ctx, recordID, err)
	case err != nil:
		h.logger().WarnContext(ctx, "reopen", "message_id", recordID, "error", err)
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable,
			Message: "the message could not be reopened; retry later"}}, map[string]string{"Retry-After": "2"})
	}
	// A reopened record whose send fails stays accepted and reopened: the same request made
	// again finds it so, and queues its copy then.
	if err := h.Enqueuer.Producer.Send(ctx, []queue.Entry{{Body: string(rec.Copy)}})[0]; err != nil {
		h.logger().WarnContext(ctx, "queue reopened copy", "message_id", recordID, "error", err)
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable,
			Message: "the message was reopened but could not be queued; make the same request again"}}, map[string]string{"Retry-After": "2"})
	}
	h.logger().InfoContext(ctx, "message reopened", "message_id", recordID, "endpoint_id", epID, "history", len(rec.History))
	return reply(http.StatusAccepted, accepted{ID: rec.ID, Status: message.Accepted}, map[string]string{"Location": prefix + PathMessages + "/" + id})
}

func (h *Handler) retryInternal(ctx context.Context, id string, err error) events.APIGatewayV2HTTPResponse {
	h.logger().ErrorContext(ctx, "retry", "message_id", id, "error", err)
	return reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil)
}
