package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// PathRecoveries is the recoveries collection; a recovery is PathRecoveries + "/" + id.
const PathRecoveries = "/v1/recoveries"

// maxRecoverBody bounds the body of POST /v1/endpoints/{id}/recover: two times and their names.
const maxRecoverBody = 4096

// RecoveryView is the body of a recovery's answers: POST /v1/endpoints/{id}/recover and GET
// /v1/recoveries/{id}.
type RecoveryView struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"` // running, finished or failed
	EndpointID string     `json:"endpoint_id"`
	Since      time.Time  `json:"since"`
	Until      time.Time  `json:"until"`
	Matched    int        `json:"matched"`  // failed deliveries found in the window so far
	Requeued   int        `json:"requeued"` // of those, queued again
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      string     `json:"error,omitempty"` // why a failed recovery stopped
}

// RecoveryViewOf reports a recovery's record as its routes show it.
func RecoveryViewOf(rec message.Record) RecoveryView {
	v := RecoveryView{ID: rec.ID, Status: "running", EndpointID: rec.EndpointID, Since: rec.RecoverSince.UTC(), Until: rec.RecoverUntil.UTC(),
		Matched: rec.Matched, Requeued: rec.FanoutDeliveries, CreatedAt: rec.CreatedAt.UTC(), UpdatedAt: rec.UpdatedAt.UTC()}
	switch rec.Status {
	case message.Delivered:
		v.Status = "finished"
	case message.Failed, message.Expired:
		v.Status = "failed"
		if rec.LastAttempt != nil {
			v.Error = rec.LastAttempt.Error
		}
	}
	if v.Status != "running" {
		t := rec.UpdatedAt.UTC()
		v.FinishedAt = &t
	}
	return v
}

// parseWindow decodes the body of POST /v1/endpoints/{id}/recover: {"since": T, "until": T?},
// RFC 3339 times, since required and not after until, until now when absent.
func parseWindow(body []byte, now time.Time) (since, until time.Time, err error) {
	if err := message.CheckJSON(body); err != nil {
		return since, until, err
	}
	var ps []message.Problem
	add := func(field, reason string) { ps = append(ps, message.Problem{Index: -1, Field: field, Reason: reason}) }
	var members map[string]json.RawMessage
	if !message.IsJSONKind(body, '{') || json.Unmarshal(body, &members) != nil {
		return since, until, &message.InvalidError{Problems: []message.Problem{{Index: -1, Field: "body",
			Reason: `must be a JSON object such as {"since": "2026-12-01T00:00:00Z"}`}}}
	}
	until = now
	for _, k := range slices.Sorted(maps.Keys(members)) {
		v := members[k]
		switch k {
		case "since", "until":
			var s string
			if message.IsJSONNull(v) && k == "until" {
				continue
			}
			if !message.IsJSONKind(v, '"') || json.Unmarshal(v, &s) != nil {
				add(k, "must be an RFC 3339 time, such as 2026-12-01T09:30:00Z")
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				add(k, "must be an RFC 3339 time, such as 2026-12-01T09:30:00Z")
				continue
			}
			if k == "since" {
				since = t
			} else {
				until = t
			}
		default:
			add(k, "unknown field; a recovery has since and until")
		}
	}
	if _, ok := members["since"]; !ok {
		add("since", "required: the start of the window of failed deliveries to send again")
	}
	if len(ps) == 0 && since.After(until) {
		add("until", "is before since; give since at or before until")
	}
	if len(ps) > 0 {
		return since, until, &message.InvalidError{Problems: ps}
	}
	return since, until, nil
}

// startRecovery answers POST /v1/endpoints/{id}/recover: it records a recovery of the
// endpoint's deliveries created in the window that ended failed, and queues its copy for the
// deliver function, which runs it; 202 with the recovery. Its record is written before its copy
// is queued and removed again when the copy cannot be, as a message's is.
func (h *Handler) startRecovery(ctx context.Context, req events.APIGatewayV2HTTPRequest, endpointID, prefix string) events.APIGatewayV2HTTPResponse {
	body, failed := readBody(req, maxRecoverBody)
	if failed != nil {
		return *failed
	}
	now := h.nowMillis()
	since, until, err := parseWindow(body, now)
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		return invalidEndpoint(invalid, "recovery")
	} else if err != nil {
		return h.internal(ctx, "parse recovery", endpointID, err)
	}
	switch _, err := h.Endpoints.GetEndpoint(ctx, endpointID); {
	case errors.Is(err, store.ErrEndpointNotFound):
		return endpointNotFound()
	case err != nil:
		return h.unavailable(ctx, "read endpoint", endpointID, err)
	}
	id := message.NewPrefixedID(message.RecoveryIDPrefix, now)
	rec := message.Record{ID: id, Status: message.Accepted, Fingerprint: "recovery:" + id, EndpointID: endpointID,
		RecoverSince: since, RecoverUntil: until, CreatedAt: now, UpdatedAt: now, CreateToken: rand.Text()}
	env, err := json.Marshal(message.Envelope{ID: id, EndpointID: endpointID, Since: &since, Until: &until, Fingerprint: rec.Fingerprint})
	if err != nil {
		return h.internal(ctx, "encode recovery", endpointID, err)
	}
	st := h.Enqueuer.Store
	if err := st.Create(ctx, rec); err != nil {
		return h.unavailable(ctx, "record recovery", endpointID, err)
	}
	if err := h.Enqueuer.Producer.Send(ctx, []queue.Entry{{Body: string(env)}})[0]; err != nil {
		// The recovery is not queued: remove it, so it never shows as running with nothing to
		// run it. A removal that fails leaves it running forever; say so in the log.
		if derr := st.Delete(context.WithoutCancel(ctx), id, rec.CreateToken); derr != nil {
			h.logger().ErrorContext(ctx, "recovery not queued and its record not removed: it shows running, and will not run", "recovery_id", id, "error", derr.Error())
		}
		h.logger().WarnContext(ctx, "queue recovery", "recovery_id", id, "endpoint_id", endpointID, "error", err)
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable,
			Message: "the recovery could not be queued; retry later"}}, map[string]string{"Retry-After": "2"})
	}
	h.logger().InfoContext(ctx, "recovery started", "recovery_id", id, "endpoint_id", endpointID)
	return reply(http.StatusAccepted, RecoveryViewOf(rec), map[string]string{"Location": prefix + PathRecoveries + "/" + id})
}

// getRecovery answers GET /v1/recoveries/{id}.
func (h *Handler) getRecovery(ctx context.Context, id string) events.APIGatewayV2HTTPResponse {
	notFound := reply(http.StatusNotFound, errorBody(CodeNotFound, "no recovery with this id"), nil)
	if !message.ValidRecoveryID(id) {
		return notFound
	}
	rec, err := h.Records.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case err != nil:
		h.logger().WarnContext(ctx, "read recovery", "recovery_id", id, "error", err)
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable,
			Message: "the recovery could not be read; retry later"}}, map[string]string{"Retry-After": "2"})
	}
	return reply(http.StatusOK, RecoveryViewOf(rec), nil)
}
