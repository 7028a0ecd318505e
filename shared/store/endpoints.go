package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
)

// Errors of an endpoint store. Test them with errors.Is.
var (
	// ErrEndpointNotFound: no endpoint has the id.
	ErrEndpointNotFound = errors.New("endpoint not found")
	// ErrEndpointExists: CreateEndpoint found an endpoint with the id already.
	ErrEndpointExists = errors.New("endpoint already exists")
	// ErrVersion: the endpoint changed since the version the write was based on was read.
	ErrVersion = errors.New("endpoint changed since it was read")
	// ErrCursor: a list cursor is garbled or belongs to another listing (another tenant).
	ErrCursor = errors.New("invalid list cursor")
)

// Listing limits: a page holds 1 to MaxListLimit endpoints, DefaultListLimit when not asked.
const (
	DefaultListLimit = 50
	MaxListLimit     = 100
)

// EndpointQuery asks for one page of endpoints, in id order (the order they were created).
type EndpointQuery struct {
	// TenantID selects the endpoints of one tenant; a pointer to "" selects those of no tenant;
	// nil selects every endpoint.
	TenantID *string
	// Limit is the page size: 1 to MaxListLimit; 0 or less means DefaultListLimit, more than
	// MaxListLimit means MaxListLimit.
	Limit int
	// Cursor continues a listing where the page that returned it ended; "" starts it.
	Cursor string
}

// EndpointPage is one page of a listing.
type EndpointPage struct {
	Endpoints []endpoint.Record
	// Next is the cursor of the next page; "" when this page is the last.
	Next string
}

// Endpoints is the contract of an endpoint store. Endpoints share the message table: items
// whose id starts "ep_", found by tenant or in full through two secondary indexes (the README's
// data model). Every write is one conditional request; a write whose answer was lost and was
// retried by the SDK recognises its own result and succeeds.
type Endpoints interface {
	// CreateEndpoint writes rec as version 1 if no endpoint has its id, else ErrEndpointExists.
	// It returns the record as written (its version and write token set).
	CreateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error)

	// GetEndpoint returns the endpoint with id, or ErrEndpointNotFound.
	GetEndpoint(ctx context.Context, id string) (endpoint.Record, error)

	// UpdateEndpoint writes rec in place of the stored endpoint, as version rec.Version+1, if the
	// stored one is still at rec.Version; else ErrVersion (read again and reapply), or
	// ErrEndpointNotFound. It returns the record as written.
	UpdateEndpoint(ctx context.Context, rec endpoint.Record) (endpoint.Record, error)

	// DeleteEndpoint removes the endpoint with id if it is at version, else ErrVersion. An
	// endpoint that is gone already is not an error: the delete's end is reached.
	DeleteEndpoint(ctx context.Context, id string, version int) error

	// ListEndpoints returns one page of the endpoints q selects, or ErrCursor for a cursor of
	// another listing or a garbled one. A listing reads an index, so an endpoint written an
	// instant before may be missing from it in AWS (DynamoDB's indexes are eventually consistent).
	ListEndpoints(ctx context.Context, q EndpointQuery) (EndpointPage, error)

	// The health writes, the deliver function's. Each is one conditional write that changes
	// only the endpoint's health, and raises its version, so that an update based on the version
	// before fails with ErrVersion and is reapplied to the endpoint as it now is, and neither
	// loses the other's change. Each applies only when the stored endpoint is as the write
	// expects; otherwise it changes nothing. Each returns the endpoint as it is after the write,
	// or as stored when it did not apply, and whether it applied; ErrEndpointNotFound for an
	// endpoint that does not exist.

	// MarkEndpointFailing sets failing_since to since if it is not set.
	MarkEndpointFailing(ctx context.Context, id string, since time.Time) (endpoint.Record, bool, error)
	// MarkEndpointHealthy clears failing_since if it is set.
	MarkEndpointHealthy(ctx context.Context, id string) (endpoint.Record, bool, error)
	// DisableFailingEndpoint disables the endpoint at at, with disabled_reason "failing", if it
	// is not disabled and its failing_since is still failingSince: of the deliveries that find
	// it failing for too long at once, in any number of functions, one disables it.
	DisableFailingEndpoint(ctx context.Context, id string, failingSince, at time.Time) (endpoint.Record, bool, error)
}

// Index key values of endpoint items.
const (
	tenantPrefix      = "tenant#" // gsi1pk: "tenant#" + tenant id ("tenant#" alone for none)
	endpointsPartKey  = "endpoints"
	indexByTenant     = "gsi1"
	indexAllEndpoints = "gsi2"
)

// partition is the index and partition key value a query reads.
func (q EndpointQuery) partition() (index, pk string) {
	if q.TenantID == nil {
		return indexAllEndpoints, endpointsPartKey
	}
	return indexByTenant, tenantPrefix + *q.TenantID
}

func (q EndpointQuery) limit() int {
	switch {
	case q.Limit <= 0:
		return DefaultListLimit
	case q.Limit > MaxListLimit:
		return MaxListLimit
	}
	return q.Limit
}

// cursor is what a list cursor holds: the partition it belongs to and the last id returned.
type cursor struct {
	Partition string `json:"p"`
	After     string `json:"a"`
}

func encodeCursor(pk, lastID string) string {
	b, _ := json.Marshal(cursor{Partition: pk, After: lastID}) // two strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the id a cursor continues after, checking it belongs to partition pk.
func decodeCursor(s, pk string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%w: not base64url", ErrCursor)
	}
	var c cursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || !endpoint.ValidID(c.After) {
		return "", fmt.Errorf("%w: garbled", ErrCursor)
	}
	if c.Partition != pk {
		return "", fmt.Errorf("%w: it continues another listing", ErrCursor)
	}
	return c.After, nil
}

// newWriteToken returns a random token naming one write.
func newWriteToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
