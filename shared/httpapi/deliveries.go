package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// deliveryStatuses are the states a status filter may name.
var deliveryStatuses = []message.Status{
	message.Accepted, message.Delivering, message.Delivered, message.Retrying, message.Failed, message.Expired,
}

// deliveryPage is the answer of an endpoint's deliveries listing.
type deliveryPage struct {
	Deliveries []View  `json:"deliveries"`
	NextCursor *string `json:"next_cursor"`
}

// deliveryQuery reads the query string of an endpoint's deliveries listing: status, since,
// until, limit (1 to 100) and cursor, nothing else and each at most once.
func deliveryQuery(req events.APIGatewayV2HTTPRequest, endpointID string) (store.DeliveryQuery, *message.InvalidError) {
	q := store.DeliveryQuery{EndpointID: endpointID, Limit: store.DefaultListLimit}
	values, ps := queryValues(req)
	add := func(field, reason string) { ps = append(ps, message.Problem{Index: -1, Field: field, Reason: reason}) }
	for _, k := range slices.Sorted(maps.Keys(values)) {
		v := values[k]
		switch k {
		case "status":
			if !slices.Contains(deliveryStatuses, message.Status(v)) {
				names := make([]string, len(deliveryStatuses))
				for i, s := range deliveryStatuses {
					names[i] = string(s)
				}
				add(k, "must be one of "+strings.Join(names, ", "))
				continue
			}
			q.Status = message.Status(v)
		case "since", "until":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				add(k, "must be an RFC 3339 time, such as 2026-12-01T09:30:00Z")
				continue
			}
			if k == "since" {
				q.Since = t
			} else {
				q.Until = t
			}
		case "limit":
			if n, ok := listLimit(v, add); ok {
				q.Limit = n
			}
		case "cursor":
			q.Cursor = v
		default:
			add(k, "unknown query parameter; a deliveries listing takes status, since, until, limit and cursor")
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		add("until", "is before since; give since at or before until")
	}
	if len(ps) > 0 {
		return q, &message.InvalidError{Problems: ps}
	}
	return q, nil
}

// listDeliveries answers an endpoint's deliveries, newest first. The endpoint is read only
// when a listing's first page is empty and the last, to tell an unknown endpoint (404) from one
// with nothing listed: the deliveries of a deleted endpoint stay listed as long as their records,
// and a listing of them that was begun is never cut short by a 404.
func (h *Handler) listDeliveries(ctx context.Context, req events.APIGatewayV2HTTPRequest, id string) events.APIGatewayV2HTTPResponse {
	q, invalid := deliveryQuery(req, id)
	if invalid != nil {
		return invalidEndpoint(invalid, "query")
	}
	pg, err := h.Deliveries.ListDeliveries(ctx, q)
	switch {
	case errors.Is(err, store.ErrCursor):
		return invalidEndpoint(&message.InvalidError{Problems: []message.Problem{{Index: -1, Field: "cursor",
			Reason: "is not a cursor of this listing: pass next_cursor as it was given, with the same endpoint, status, since and until"}}}, "query")
	case err != nil:
		return h.unavailable(ctx, "list deliveries", id, err)
	}
	if len(pg.Records) == 0 && pg.Next == "" && q.Cursor == "" {
		if _, failed := h.read(ctx, id); failed != nil {
			return *failed
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

// queryValues reads a request's query string, each parameter at most once and named: the raw
// query string when API Gateway passed it, else its parsed parameters. The problems name what
// was refused; the values hold what may be read.
func queryValues(req events.APIGatewayV2HTTPRequest) (map[string]string, []message.Problem) {
	var ps []message.Problem
	add := func(field, reason string) { ps = append(ps, message.Problem{Index: -1, Field: field, Reason: reason}) }
	values, err := url.ParseQuery(req.RawQueryString)
	if err != nil {
		add("query", "is not a valid query string")
	}
	if req.RawQueryString == "" {
		values = url.Values{}
		for k, v := range req.QueryStringParameters {
			values[k] = []string{v}
		}
	}
	out := make(map[string]string, len(values))
	for _, k := range slices.Sorted(maps.Keys(values)) {
		switch vs := values[k]; {
		case k == "":
			add("query", "has a parameter with no name")
		case len(vs) > 1:
			add(k, "is given more than once")
		default:
			out[k] = vs[0]
		}
	}
	return out, ps
}

// listLimit reads a listing's limit, 1 to store.MaxListLimit, or adds why it cannot.
func listLimit(v string, add func(field, reason string)) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > store.MaxListLimit {
		add("limit", fmt.Sprintf("must be a whole number from 1 to %d", store.MaxListLimit))
		return 0, false
	}
	return n, true
}
