package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Endpoints finds the endpoint a message goes to, ready to deliver to. An endpoint.Cache built
// by NewEndpointCache implements it, so a warm function reads an endpoint at most once per
// endpoint.DefaultCacheTTL however many of its messages it delivers. Get returns an error
// wrapping store.ErrEndpointNotFound for an endpoint that does not exist (deleted).
type Endpoints interface {
	Get(ctx context.Context, id string) (Endpoint, error)
}

var _ Endpoints = (*endpoint.Cache[Endpoint])(nil)

// EndpointReader reads one endpoint; store.Endpoints has it.
type EndpointReader interface {
	GetEndpoint(ctx context.Context, id string) (endpoint.Record, error)
}

var _ EndpointReader = store.Endpoints(nil)

// Endpoint is what a delivery needs of an endpoint: where it goes, with which headers, whether
// it may go at all, and the keys that sign it. It never shows its keys (see String).
type Endpoint struct {
	ID       string
	TenantID string
	URL      string
	Parsed   *url.URL
	Host     string // the per-host limit's key and the logs' target_host, as for a target
	Headers  map[string]string
	Disabled bool
	// RatePerSecond is the endpoint's rate limit; 0 means none.
	RatePerSecond int
	// FailingSince is the endpoint's failing_since, nil while it is healthy, and Version the
	// version of the endpoint these were read at (see Health).
	FailingSince *time.Time
	Version      int
	// Refused says why the URL or headers break the target rules as they are now (they are
	// checked again at delivery: the rules may have changed since the endpoint was written);
	// nil when they pass.
	Refused error
	keys    []signingKey
}

// signingKey is one decrypted secret of an endpoint and when it stops signing; the current
// secret's until is zero (it signs until rotated).
type signingKey struct {
	key   []byte
	until time.Time
}

// String shows the endpoint's URL, never its keys.
func (e Endpoint) String() string { return "deliver.Endpoint{" + e.URL + "}" }

// Format hides the endpoint's keys from every fmt verb, %#v and %+v included.
func (e Endpoint) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, e.String()) }

// LogValue hides the endpoint's keys from slog.
func (e Endpoint) LogValue() slog.Value { return slog.StringValue(e.String()) }

// Keys returns the keys that sign a push at now: the current secret's, then those of the
// rotated-out secrets whose overlap has not ended, newest first. They are filtered here, at
// each push, not when the endpoint was read, so a cached endpoint stops signing with a
// rotated-out secret at its end, not up to a cache lifetime later.
func (e Endpoint) Keys(now time.Time) [][]byte {
	out := make([][]byte, 0, len(e.keys))
	for _, k := range e.keys {
		if k.until.IsZero() || now.Before(k.until) {
			out = append(out, k.key)
		}
	}
	return out
}

// NewEndpointCache returns the deliver function's cache of endpoints: each read once per
// endpoint.DefaultCacheTTL through r, its secrets decrypted with keyring there (the one place
// secrets are decrypted: where pushes are signed), its URL and headers checked against rules.
// An endpoint that does not exist is kept as such; a failed read, or a secret that does not
// decrypt, is not kept.
func NewEndpointCache(r EndpointReader, keyring *endpoint.Keyring, rules message.Rules) *endpoint.Cache[Endpoint] {
	return &endpoint.Cache[Endpoint]{
		Load: func(ctx context.Context, id string) (Endpoint, error) {
			rec, err := r.GetEndpoint(ctx, id)
			if err != nil {
				return Endpoint{}, err
			}
			return resolve(rec, keyring, rules)
		},
		Keep: func(err error) bool { return errors.Is(err, store.ErrEndpointNotFound) },
	}
}

// resolve makes rec ready to deliver to.
func resolve(rec endpoint.Record, keyring *endpoint.Keyring, rules message.Rules) (Endpoint, error) {
	e := Endpoint{ID: rec.ID, TenantID: rec.TenantID, URL: rec.URL, Headers: rec.Headers, Disabled: rec.Disabled,
		Host: message.TargetHost(rec.URL), FailingSince: rec.FailingSince, Version: rec.Version}
	if rec.RateLimit != nil {
		e.RatePerSecond = rec.RateLimit.PerSecond
	}
	var problems []string
	if err := rules.CheckURL(rec.URL); err != nil {
		problems = append(problems, "url "+err.Error())
	}
	for _, p := range message.CheckHeaders("headers", rec.Headers) {
		problems = append(problems, p.String())
	}
	if u, err := url.Parse(rec.URL); err == nil && len(problems) == 0 {
		// The per-host key as a target's (host and port), so a host's pushes share one limit
		// whether they name it or its endpoints do.
		e.Parsed, e.Host = u, strings.ToLower(u.Host)
	} else if len(problems) == 0 {
		problems = append(problems, "url does not parse")
	}
	if len(problems) > 0 {
		e.Refused = errors.New(strings.Join(problems, "; "))
	}
	cur, err := rec.CurrentSecret(keyring)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s: %w", rec.ID, err)
	}
	e.keys = append(e.keys, signingKey{key: cur.Key()})
	for _, p := range rec.Previous {
		s, err := keyring.Open(rec.ID, p.Sealed)
		if err != nil {
			return Endpoint{}, fmt.Errorf("endpoint %s: previous secret: %w", rec.ID, err)
		}
		e.keys = append(e.keys, signingKey{key: s.Key(), until: p.Until})
	}
	return e, nil
}

// findEndpoint finds the endpoint of j's message, before j is scheduled: its URL's host is the key of
// the per-host limit. The read has the store budget; a failure is kept in j for deliver.
func (h *Handler) findEndpoint(inv context.Context, j *job) {
	id := j.env.EndpointID
	if h.Endpoints == nil {
		j.epErr = errors.New("no endpoint store configured")
		j.host = message.EndpointIDPrefix + id
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(inv), h.storeBudget())
	defer cancel()
	ep, err := h.Endpoints.Get(ctx, id)
	ep = h.Health.overlay(ep)
	if err != nil || ep.Parsed == nil {
		// Its delivery ends at once, or is handed back: no connection, so a key of its own.
		j.ep, j.epErr, j.host = &ep, err, id
		return
	}
	j.ep, j.url, j.host = &ep, ep.Parsed, ep.Host
}

// endpointOpen reports whether j's message may be sent to its endpoint. If not, it has ended
// the message or handed it back, and set j's verdict: a deleted or disabled endpoint, or one
// whose URL or headers the rules now refuse, ends the message failed at once, with no attempt
// counted and nothing sent; an endpoint that could not be read hands the record back after the
// short delay of a dependency failure.
//
// Ending a message there goes through finishUnclaimed, the write of expired copies, rather than a
// claim and a finish: a claim would count an attempt that is never made. That write keeps the
// guarantees of a claimed one: it applies only to a record that is not final, not leased by a
// live worker (else the copy is handed back until that lease ends) and of this copy's
// fingerprint, so it never overwrites a delivery in flight or another message's record.
func (h *Handler) endpointOpen(ctx context.Context, j *job, now time.Time) bool {
	var reason string
	switch {
	case errors.Is(j.epErr, store.ErrEndpointNotFound):
		reason = message.ReasonEndpointDeleted
	case errors.Is(j.epErr, endpoint.ErrSealed), errors.Is(j.epErr, store.ErrMalformed):
		// Read, but unusable however often it is read again: a secret that does not decrypt
		// under this function's ENDPOINT_SECRETS_KEY, or an item of another shape. Handed back,
		// the copy would come back until the dead-letter queue took it, its record saying it is
		// still to be delivered; it ends now, saying why.
		reason = message.ReasonEndpointUnreadable
		h.log().ErrorContext(ctx, "endpoint unreadable: check ENDPOINT_SECRETS_KEY is the key its secrets were sealed with", "message_id", j.env.ID, "endpoint_id", j.env.EndpointID, "error", j.epErr.Error())
	case j.epErr != nil:
		h.dependencyFailed(j)
		h.log().ErrorContext(ctx, "endpoint not read", "message_id", j.env.ID, "endpoint_id", j.env.EndpointID, "error", j.epErr.Error())
		return false
	case j.ep.Disabled:
		reason = message.ReasonEndpointDisabled
	case j.ep.Refused != nil:
		reason = "endpoint_refused: " + j.ep.Refused.Error()
	default:
		return true
	}
	h.log().InfoContext(ctx, "delivery", "message_id", j.env.ID, "endpoint_id", j.env.EndpointID, "target_host", j.host,
		"status", message.Failed, "error", reason)
	h.finishUnclaimed(ctx, j, store.Outcome{Now: now, Status: message.Failed, Fingerprint: j.env.Fingerprint,
		Attempt: &message.Attempt{At: now, Error: reason}, New: h.newRecord(j)})
	return false
}
