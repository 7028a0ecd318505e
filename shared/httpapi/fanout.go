package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Summary counts a fan-out message's deliveries by state, in GET /v1/messages/{id}. Every state
// is present (0 when none), and Total is their sum.
type Summary struct {
	Total      int `json:"total"`
	Accepted   int `json:"accepted"`
	Delivering int `json:"delivering"`
	Delivered  int `json:"delivered"`
	Retrying   int `json:"retrying"`
	Failed     int `json:"failed"`
	Expired    int `json:"expired"`
}

// SummaryOf summarises the deliveries of the fan-out message rec from the count of their
// records by state. A delivery's record is made when it is first received (or ended without an
// attempt), so a delivery queued but not yet received has none: the deliveries rec says its
// expansion queued (all of them once rec is delivered, those before its last checkpoint while it
// expands) and that have no record yet are counted as accepted. Total is never less than the
// records counted. A state that is not a message state is an error.
func SummaryOf(rec message.Record, counts map[message.Status]int) (Summary, error) {
	var s Summary
	slot := map[message.Status]*int{
		message.Accepted: &s.Accepted, message.Delivering: &s.Delivering, message.Delivered: &s.Delivered,
		message.Retrying: &s.Retrying, message.Failed: &s.Failed, message.Expired: &s.Expired,
	}
	counted := 0
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		p, ok := slot[st]
		if !ok {
			return Summary{}, fmt.Errorf("summarise deliveries of %s: %d in the unknown state %q", rec.ID, counts[st], st)
		}
		*p += counts[st]
		counted += counts[st]
	}
	s.Total = max(counted, rec.FanoutDeliveries)
	s.Accepted += s.Total - counted
	return s, nil
}

// summary is the deliveries summary of the fan-out message rec, or the answer that replaces the
// GET when it cannot be made. An expansion that ended with no delivery has nothing to count.
func (h *Handler) summary(ctx context.Context, rec message.Record) (Summary, *events.APIGatewayV2HTTPResponse) {
	counts := map[message.Status]int{}
	if rec.Status != message.Delivered || rec.FanoutDeliveries > 0 {
		var err error
		if counts, err = h.Deliveries.CountDeliveries(ctx, rec.ID); err != nil {
			h.logger().WarnContext(ctx, "count deliveries", "message_id", rec.ID, "error", err)
			r := reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable,
				Message: "the message's deliveries could not be counted; retry later"}}, map[string]string{"Retry-After": "2"})
			return Summary{}, &r
		}
	}
	s, err := SummaryOf(rec, counts)
	if err != nil {
		h.logger().ErrorContext(ctx, "count deliveries", "message_id", rec.ID, "error", err)
		r := reply(http.StatusInternalServerError, errorBody(ingest.CodeInternal, "internal error"), nil)
		return Summary{}, &r
	}
	return s, nil
}

// messageDeliveryQuery reads the query string of a message's deliveries listing: limit (1 to
// 100) and cursor, nothing else and each at most once.
func messageDeliveryQuery(req events.APIGatewayV2HTTPRequest, messageID string) (store.MessageDeliveryQuery, *message.InvalidError) {
	q := store.MessageDeliveryQuery{MessageID: messageID, Limit: store.DefaultListLimit}
	values, ps := queryValues(req)
	add := func(field, reason string) { ps = append(ps, message.Problem{Index: -1, Field: field, Reason: reason}) }
	for _, k := range slices.Sorted(maps.Keys(values)) {
		switch v := values[k]; k {
		case "limit":
			if n, ok := listLimit(v, add); ok {
				q.Limit = n
			}
		case "cursor":
			q.Cursor = v
		default:
			add(k, "unknown query parameter; a message's deliveries listing takes limit and cursor")
		}
	}
	if len(ps) > 0 {
		return q, &message.InvalidError{Problems: ps}
	}
	return q, nil
}

// listMessageDeliveries answers the deliveries of a fan-out message made so far, in endpoint id
// order. The message is read only when a listing's first page is empty and the last, to tell an
// unknown message, or one that is not a fan-out (it has no deliveries: its own record is its
// delivery), both 404, from a fan-out with none yet.
func (h *Handler) listMessageDeliveries(ctx context.Context, req events.APIGatewayV2HTTPRequest, id string) events.APIGatewayV2HTTPResponse {
	notFound := reply(http.StatusNotFound, errorBody(CodeNotFound, "no message with this id"), nil)
	if !message.ValidID(id) {
		return notFound
	}
	q, invalid := messageDeliveryQuery(req, id)
	if invalid != nil {
		return invalidEndpoint(invalid, "query")
	}
	unavailable := func(op string, err error) events.APIGatewayV2HTTPResponse {
		h.logger().WarnContext(ctx, op, "message_id", id, "error", err)
		return reply(http.StatusServiceUnavailable, ingest.ErrorBody{Error: ingest.Error{Code: ingest.CodeUnavailable,
			Message: "the message's deliveries could not be read; retry later"}}, map[string]string{"Retry-After": "2"})
	}
	pg, err := h.Deliveries.ListMessageDeliveries(ctx, q)
	switch {
	case errors.Is(err, store.ErrCursor):
		return invalidEndpoint(&message.InvalidError{Problems: []message.Problem{{Index: -1, Field: "cursor",
			Reason: "is not a cursor of this listing: pass next_cursor as it was given, with the same message"}}}, "query")
	case err != nil:
		return unavailable("list deliveries", err)
	}
	if len(pg.Records) == 0 && pg.Next == "" && q.Cursor == "" {
		rec, err := h.Records.Get(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return notFound
		case err != nil:
			return unavailable("read record", err)
		case rec.EventType == "":
			return reply(http.StatusNotFound, errorBody(CodeNotFound,
				"the message is not a fan-out (it names a target or an endpoint_id): it has no deliveries listing; GET /v1/messages/"+id+" shows its delivery"), nil)
		}
	}
	out := deliveryPage{Deliveries: make([]View, len(pg.Records))}
	for i, rec := range pg.Records {
		out.Deliveries[i] = ViewOf(rec)
	}
	if pg.Next != "" {
		out.NextCursor = &pg.Next
	}
	return reply(http.StatusOK, out, nil)
}
