package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

// DeliveryQuery asks for one page of an endpoint's deliveries, newest first: today the message
// records that name the endpoint by endpoint_id.
type DeliveryQuery struct {
	EndpointID string
	// Status, when set, keeps only the deliveries in that state.
	Status message.Status
	// Since and Until, when set, keep the deliveries created at or after Since and at or before
	// Until, to the millisecond.
	Since, Until time.Time
	// Limit is the page size: 1 to MaxListLimit; 0 or less means DefaultListLimit, more than
	// MaxListLimit means MaxListLimit.
	Limit int
	// Cursor continues a listing where the page that returned it ended; "" starts it. A cursor
	// is bound to the endpoint and the filters it was given with.
	Cursor string
}

// DeliveryPage is one page of an endpoint's deliveries.
type DeliveryPage struct {
	Records []message.Record
	// Next is the cursor of the next page; "" when the listing is complete. With a Status
	// filter a page may hold fewer than Limit records and still have a Next.
	Next string
}

// MessageDeliveryQuery asks for one page of a fan-out message's deliveries, in endpoint id order.
type MessageDeliveryQuery struct {
	MessageID string
	// Limit and Cursor are as in DeliveryQuery; a cursor is bound to its message.
	Limit  int
	Cursor string
}

// Deliveries lists deliveries from the table's indexes, never by a scan.
type Deliveries interface {
	// ListMessageDeliveries returns one page of the deliveries of a fan-out message made so far
	// (a delivery's record is made by its first claim), or ErrCursor.
	ListMessageDeliveries(ctx context.Context, q MessageDeliveryQuery) (DeliveryPage, error)

	// CountDeliveries returns how many deliveries of a fan-out message are in each state, of
	// those made so far.
	CountDeliveries(ctx context.Context, messageID string) (map[message.Status]int, error)

	// ListDeliveries returns one page of the deliveries q selects, or ErrCursor for a cursor of
	// another listing (another endpoint or other filters) or a garbled one. It reads an index,
	// so a delivery written an instant before may be missing from it in AWS (DynamoDB's indexes
	// are eventually consistent).
	ListDeliveries(ctx context.Context, q DeliveryQuery) (DeliveryPage, error)
}

// messageDeliveriesPrefix begins the gsi1 partition key of a fan-out's delivery: "msg#" +
// message id; its sort key is the endpoint id.
const messageDeliveriesPrefix = "msg#"

// endpointDeliveriesPrefix begins the gsi2 partition key of a delivery: "ep#" + endpoint id.
const endpointDeliveriesPrefix = "ep#"

// sortKeyTime is the time layout of a delivery's gsi2 sort key: fixed width, UTC, milliseconds,
// so that byte order is time order.
const sortKeyTime = "2006-01-02T15:04:05.000Z"

// deliveryKeys returns the gsi2 keys of a message record to an endpoint: the partition of the
// endpoint and created_at + "#" + id; ok is false for a record to a raw target, and for a
// recovery's (it names its endpoint, but is none of its deliveries).
func deliveryKeys(rec message.Record) (pk, sk string, ok bool) {
	if rec.EndpointID == "" || message.ValidRecoveryID(rec.ID) {
		return "", "", false
	}
	return endpointDeliveriesPrefix + rec.EndpointID, rec.CreatedAt.UTC().Format(sortKeyTime) + "#" + rec.ID, true
}

// idOfSortKey is the message id a delivery sort key ends with.
func idOfSortKey(sk string) (string, bool) {
	_, id, ok := strings.Cut(sk, "#")
	return id, ok && message.ValidRecordID(id)
}

func (q DeliveryQuery) limit() int {
	return EndpointQuery{Limit: q.Limit}.limit()
}

// bounds are the sort key bounds of q's time filters, "" when absent: a record at millisecond t
// is at or after Since when t >= Since rounded up, at or before Until when t <= Until rounded
// down; "$" sorts just after the "#" that ends the time in every sort key.
func (q DeliveryQuery) bounds() (lo, hi string) {
	if !q.Since.IsZero() {
		s := q.Since.UTC()
		if t := s.Truncate(time.Millisecond); !t.Equal(s) {
			s = t.Add(time.Millisecond)
		}
		lo = s.Format(sortKeyTime)
	}
	if !q.Until.IsZero() {
		hi = q.Until.UTC().Truncate(time.Millisecond).Format(sortKeyTime) + "$"
	}
	return lo, hi
}

// empty reports whether q's time filters select nothing at all (Since after Until).
func (q DeliveryQuery) empty() bool {
	lo, hi := q.bounds()
	return lo != "" && hi != "" && lo > hi
}

// filters is what a delivery cursor is bound to beside the endpoint.
func (q DeliveryQuery) filters() string {
	lo, hi := q.bounds()
	return string(q.Status) + "|" + lo + "|" + hi
}

// deliveryCursor is what a delivery list cursor holds: the endpoint's partition, the filters
// and the sort key the next page starts after.
type deliveryCursor struct {
	Partition string `json:"p"`
	Filters   string `json:"f"`
	After     string `json:"a"`
}

func encodeDeliveryCursor(q DeliveryQuery, afterSK string) string {
	b, _ := json.Marshal(deliveryCursor{Partition: endpointDeliveriesPrefix + q.EndpointID, Filters: q.filters(), After: afterSK})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeDeliveryCursor returns the sort key q's cursor continues after, "" for no cursor.
func decodeDeliveryCursor(q DeliveryQuery) (string, error) {
	if q.Cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil {
		return "", fmt.Errorf("%w: not base64url", ErrCursor)
	}
	var c deliveryCursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return "", fmt.Errorf("%w: garbled", ErrCursor)
	}
	if _, ok := idOfSortKey(c.After); !ok {
		return "", fmt.Errorf("%w: garbled", ErrCursor)
	}
	switch {
	case c.Partition != endpointDeliveriesPrefix+q.EndpointID:
		return "", fmt.Errorf("%w: it continues another endpoint's listing", ErrCursor)
	case c.Filters != q.filters():
		return "", fmt.Errorf("%w: it continues a listing with other filters (status, since, until)", ErrCursor)
	}
	// A listing's own cursors stay within its time bounds; one outside them was not given by it
	// (DynamoDB would refuse it as a start key, which would read as an outage).
	if lo, hi := q.bounds(); (lo != "" && c.After < lo) || (hi != "" && c.After > hi) {
		return "", fmt.Errorf("%w: it lies outside since and until", ErrCursor)
	}
	return c.After, nil
}
