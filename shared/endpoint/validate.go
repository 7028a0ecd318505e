package endpoint

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pushfn/pushfn/shared/message"
)

// Limits of an endpoint's fields. URL and headers follow a message target's limits
// (message.MaxURLBytes, message.MaxHeaders).
const (
	MaxTenantIDChars      = message.MaxTenantIDChars
	MaxDescriptionChars   = 1024
	MaxEventTypes         = 64
	MaxEventTypeBytes     = message.MaxEventTypeBytes
	MaxRatePerSecond      = 10_000
	MaxMetadataKeys       = 32
	MaxMetadataKeyBytes   = 64
	MaxMetadataValueBytes = 512
	// MaxMetadataBytes bounds the keys and values of metadata together.
	MaxMetadataBytes = 4096
	// MaxBodyBytes bounds the body of a create or update.
	MaxBodyBytes = 64 << 10
)

// Validate checks the values of e against the limits above and the target rules of r (URL,
// SSRF and header checks, as for a message's target), and returns every problem found (Index
// -1), sorted by field, or none. It checks what a caller may set; ids and times are the
// server's.
func Validate(e Endpoint, r message.Rules) []message.Problem {
	var ps []message.Problem
	add := func(field, reason string) {
		ps = append(ps, message.Problem{Index: -1, Field: field, Reason: reason})
	}
	if e.TenantID != "" {
		if reason := message.CheckTenantID(e.TenantID); reason != "" {
			add("tenant_id", reason)
		}
	}
	if err := r.CheckURL(e.URL); err != nil {
		add("url", err.Error())
	}
	if n := utf8.RuneCountInString(e.Description); n > MaxDescriptionChars {
		add("description", fmt.Sprintf("is %d characters; at most %d are allowed", n, MaxDescriptionChars))
	} else if strings.IndexFunc(e.Description, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }) >= 0 {
		add("description", "must not contain control characters other than tab and newline")
	}
	ps = append(ps, message.CheckHeaders("headers", e.Headers)...)
	if n := len(e.EventTypes); n > MaxEventTypes {
		add("event_types", fmt.Sprintf("has %d entries; at most %d are allowed", n, MaxEventTypes))
	}
	seen := map[string]int{}
	for i, p := range e.EventTypes {
		field := fmt.Sprintf("event_types[%d]", i)
		if reason := checkPattern(p); reason != "" {
			add(field, reason)
		} else if first, dup := seen[p]; dup {
			add(field, fmt.Sprintf("repeats event_types[%d]", first))
		} else {
			seen[p] = i
		}
	}
	if rl := e.RateLimit; rl != nil && (rl.PerSecond < 1 || rl.PerSecond > MaxRatePerSecond) {
		add("rate_limit.per_second", fmt.Sprintf("is %d; must be from 1 to %d (or leave rate_limit out for no limit)", rl.PerSecond, MaxRatePerSecond))
	}
	ps = append(ps, checkMetadata(e.Metadata)...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Field < ps[j].Field })
	return ps
}

// checkPattern returns why p is not a valid subscription: an event type, or a prefix of one
// followed by ".*" ("order.*"). "*" alone is refused: no event_types at all means every type.
func checkPattern(p string) string {
	if p == "*" {
		return `"*" alone is not a pattern: leave event_types empty to receive every type`
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		if prefix == "" {
			return `".*" needs a prefix before it, such as "order.*"`
		}
		if reason := message.CheckEventType(prefix + "."); reason != "" {
			return reason
		}
		return ""
	}
	return message.CheckEventType(p)
}

// Match reports whether an endpoint subscribed to patterns receives events of type eventType:
// every type when patterns is empty; else a pattern equal to it, or a "prefix.*" pattern with
// eventType starting "prefix." and going on after it.
func Match(patterns []string, eventType string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if p == eventType {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, ".") &&
			len(eventType) > len(prefix) && strings.HasPrefix(eventType, prefix) {
			return true
		}
	}
	return false
}

// Subscribed reports whether e receives events of type eventType (see Match).
func (e Endpoint) Subscribed(eventType string) bool { return Match(e.EventTypes, eventType) }

func checkMetadata(md map[string]string) []message.Problem {
	var ps []message.Problem
	add := func(field, reason string) {
		ps = append(ps, message.Problem{Index: -1, Field: field, Reason: reason})
	}
	if n := len(md); n > MaxMetadataKeys {
		add("metadata", fmt.Sprintf("has %d keys; at most %d are allowed", n, MaxMetadataKeys))
	}
	total := 0
	for k, v := range md {
		total += len(k) + len(v)
		field := "metadata." + k
		switch {
		case k == "" || len(k) > MaxMetadataKeyBytes:
			add(field, fmt.Sprintf("key must be 1 to %d characters", MaxMetadataKeyBytes))
		case !message.Printable(k, 0x21):
			add(field, "key must be printable ASCII without spaces")
		case len(v) > MaxMetadataValueBytes:
			add(field, fmt.Sprintf("value is %d bytes; at most %d are allowed", len(v), MaxMetadataValueBytes))
		}
	}
	if total > MaxMetadataBytes {
		add("metadata", fmt.Sprintf("keys and values take %d bytes; at most %d are allowed", total, MaxMetadataBytes))
	}
	return ps
}
