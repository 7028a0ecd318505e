package endpoint

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestIDs(t *testing.T) {
	t.Parallel()
	a, b := NewID(t0), NewID(t0.Add(time.Millisecond))
	if !strings.HasPrefix(a, "ep_") || len(a) != len("ep_")+26 {
		t.Fatalf("NewID = %q, want ep_ and 26 characters", a)
	}
	if !(a < b) {
		t.Errorf("ids not time-ordered: %q >= %q", a, b)
	}
	if !ValidID(a) || ValidID(message.NewID(t0)) || ValidID("ep_") || ValidID("ep_"+strings.Repeat("u", 26)) {
		t.Errorf("ValidID accepts or refuses the wrong ids")
	}
	if message.ValidID(a) {
		t.Errorf("an endpoint id %q passes as a message id", a)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns []string
		event    string
		want     bool
	}{
		{nil, "order.shipped", true},
		{[]string{}, "anything", true},
		{[]string{"order.shipped"}, "order.shipped", true},
		{[]string{"order.shipped"}, "order.shippedx", false},
		{[]string{"order.shipped"}, "order", false},
		{[]string{"order.*"}, "order.shipped", true},
		{[]string{"order.*"}, "order.a.b", true},
		{[]string{"order.*"}, "order.", false},
		{[]string{"order.*"}, "order", false},
		{[]string{"order.*"}, "orders.shipped", false},
		{[]string{"invoice.paid", "order.*"}, "invoice.paid", true},
		{[]string{"invoice.paid", "order.*"}, "invoice.void", false},
		{[]string{"a.b.*"}, "a.b.c", true},
		{[]string{"a.b.*"}, "a.bc", false},
	}
	for _, tt := range tests {
		if got := Match(tt.patterns, tt.event); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.patterns, tt.event, got, tt.want)
		}
		if got := (Endpoint{EventTypes: tt.patterns}).Subscribed(tt.event); got != tt.want {
			t.Errorf("Subscribed(%q) with %q = %v, want %v", tt.event, tt.patterns, got, tt.want)
		}
	}
}

func valid() Endpoint {
	return Endpoint{
		TenantID: "acme", URL: "https://hooks.example.com/push", Description: "orders\tfeed\n",
		Headers: map[string]string{"X-Tenant": "acme"}, EventTypes: []string{"order.shipped", "order.*"},
		RateLimit: &RateLimit{PerSecond: 50}, Metadata: map[string]string{"team": "billing"},
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tests := []struct {
		name   string
		edit   func(e *Endpoint)
		rules  message.Rules
		fields []string
	}{
		{"valid", func(*Endpoint) {}, message.Rules{}, nil},
		{"no tenant, no filter, no limit", func(e *Endpoint) { e.TenantID, e.EventTypes, e.RateLimit, e.Metadata = "", nil, nil, nil }, message.Rules{}, nil},
		{"tenant too long", func(e *Endpoint) { e.TenantID = strings.Repeat("a", 129) }, message.Rules{}, []string{"tenant_id"}},
		{"tenant control character", func(e *Endpoint) { e.TenantID = "a\x01" }, message.Rules{}, []string{"tenant_id"}},
		{"tenant of 128 with a space", func(e *Endpoint) { e.TenantID = strings.Repeat("a b", 42) + "ab" }, message.Rules{}, nil},
		{"url missing", func(e *Endpoint) { e.URL = "" }, message.Rules{}, []string{"url"}},
		{"url http", func(e *Endpoint) { e.URL = "http://hooks.example.com" }, message.Rules{}, []string{"url"}},
		{"url http allowed", func(e *Endpoint) { e.URL = "http://hooks.example.com" }, message.Rules{AllowHTTPTargets: true}, nil},
		{"url metadata address", func(e *Endpoint) { e.URL = "https://169.254.169.254/latest" }, message.Rules{}, []string{"url"}},
		{"url localhost", func(e *Endpoint) { e.URL = "https://localhost:8443/" }, message.Rules{}, []string{"url"}},
		{"url loopback allowed", func(e *Endpoint) { e.URL = "https://127.0.0.1:8443/" }, message.Rules{AllowPrivateTargets: true}, nil},
		{"url user-info", func(e *Endpoint) { e.URL = "https://a:b@hooks.example.com/" }, message.Rules{}, []string{"url"}},
		{"description too long", func(e *Endpoint) { e.Description = strings.Repeat("é", 1025) }, message.Rules{}, []string{"description"}},
		{"description of 1024 characters", func(e *Endpoint) { e.Description = strings.Repeat("é", 1024) }, message.Rules{}, nil},
		{"description control", func(e *Endpoint) { e.Description = "a\x00b" }, message.Rules{}, []string{"description"}},
		{"forbidden header", func(e *Endpoint) { e.Headers = map[string]string{"Webhook-Signature": "x"} }, message.Rules{}, []string{"headers.Webhook-Signature"}},
		{"header CRLF", func(e *Endpoint) { e.Headers = map[string]string{"X-A": "a\r\nb"} }, message.Rules{}, []string{"headers.X-A"}},
		{"header twice", func(e *Endpoint) { e.Headers = map[string]string{"X-A": "1", "x-a": "2"} }, message.Rules{}, []string{"headers.x-a"}},
		{"too many headers", func(e *Endpoint) {
			e.Headers = map[string]string{}
			for _, n := range many(21, func(i int) string { return "X-H" + string(rune('a'+i)) }) {
				e.Headers[n] = "v"
			}
		}, message.Rules{}, []string{"headers"}},
		{"star alone", func(e *Endpoint) { e.EventTypes = []string{"*"} }, message.Rules{}, []string{"event_types[0]"}},
		{"bare .*", func(e *Endpoint) { e.EventTypes = []string{"a", ".*"} }, message.Rules{}, []string{"event_types[1]"}},
		{"inner star", func(e *Endpoint) { e.EventTypes = []string{"order.*.x"} }, message.Rules{}, []string{"event_types[0]"}},
		{"trailing star without dot", func(e *Endpoint) { e.EventTypes = []string{"order*"} }, message.Rules{}, []string{"event_types[0]"}},
		{"space", func(e *Endpoint) { e.EventTypes = []string{"order shipped"} }, message.Rules{}, []string{"event_types[0]"}},
		{"empty type", func(e *Endpoint) { e.EventTypes = []string{""} }, message.Rules{}, []string{"event_types[0]"}},
		{"duplicate type", func(e *Endpoint) { e.EventTypes = []string{"a.b", "a.b"} }, message.Rules{}, []string{"event_types[1]"}},
		{"type too long", func(e *Endpoint) { e.EventTypes = []string{strings.Repeat("a", 129)} }, message.Rules{}, []string{"event_types[0]"}},
		{"too many types", func(e *Endpoint) { e.EventTypes = many(65, func(i int) string { return "t" + strings.Repeat("x", i) }) }, message.Rules{}, []string{"event_types"}},
		{"rate zero", func(e *Endpoint) { e.RateLimit = &RateLimit{} }, message.Rules{}, []string{"rate_limit.per_second"}},
		{"rate too high", func(e *Endpoint) { e.RateLimit = &RateLimit{PerSecond: 10_001} }, message.Rules{}, []string{"rate_limit.per_second"}},
		{"metadata key space", func(e *Endpoint) { e.Metadata = map[string]string{"a b": "x"} }, message.Rules{}, []string{"metadata.a b"}},
		{"metadata value long", func(e *Endpoint) { e.Metadata = map[string]string{"k": strings.Repeat("v", 513)} }, message.Rules{}, []string{"metadata.k"}},
		{"metadata too big", func(e *Endpoint) {
			e.Metadata = map[string]string{}
			for _, k := range many(10, func(i int) string { return "k" + string(rune('a'+i)) }) {
				e.Metadata[k] = strings.Repeat("v", 500)
			}
		}, message.Rules{}, []string{"metadata"}},
		{"every problem at once", func(e *Endpoint) { e.URL, e.TenantID, e.RateLimit = "ftp://x", "\x7f", &RateLimit{PerSecond: -1} },
			message.Rules{}, []string{"rate_limit.per_second", "tenant_id", "url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := valid()
			tt.edit(&e)
			var got []string
			for _, p := range Validate(e, tt.rules) {
				got = append(got, p.Field)
				if p.Reason == "" || p.Index != -1 {
					t.Errorf("problem %+v: want a reason and index -1", p)
				}
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields %q, want %q (%v)", got, tt.fields, Validate(e, tt.rules))
			}
		})
	}
}

func TestCheckEventType(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{"order.shipped": true, "a": true, "order.*": false, "*": false, "": false, "a b": false, "é": false} {
		if got := message.CheckEventType(name) == ""; got != ok {
			t.Errorf("CheckEventType(%q) accepts = %v, want %v", name, got, ok)
		}
	}
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var inv *message.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v (%T), want *message.InvalidError", err, err)
	}
	var out []string
	for _, p := range inv.Problems {
		out = append(out, p.Path())
	}
	return out
}

func TestParseCreate(t *testing.T) {
	t.Parallel()
	rules := message.Rules{}
	secret := GenerateSecret()
	tests := []struct {
		name      string
		body      string
		fields    []string // nil: accepted
		malformed bool
	}{
		{name: "url only", body: `{"url": "https://hooks.example.com/a"}`},
		{name: "every field", body: `{"url": "https://hooks.example.com/a", "tenant_id": "acme", "description": "d",
			"headers": {"X-A": "1"}, "event_types": ["a.b", "c.*"], "disabled": true, "rate_limit": {"per_second": 5},
			"metadata": {"k": "v"}, "secret": "` + secret.Reveal() + `"}`},
		{name: "nulls for optional fields", body: `{"url": "https://hooks.example.com/a", "tenant_id": null, "headers": null,
			"event_types": null, "rate_limit": null, "metadata": null, "secret": null, "description": null, "disabled": null}`},
		{name: "url missing", body: `{}`, fields: []string{"url"}},
		{name: "url null", body: `{"url": null}`, fields: []string{"url"}},
		{name: "url number", body: `{"url": 5}`, fields: []string{"url"}},
		{name: "unknown field", body: `{"url": "https://hooks.example.com/a", "target": {}}`, fields: []string{"target"}},
		{name: "read-only field", body: `{"url": "https://hooks.example.com/a", "id": "ep_x", "disabled_reason": "x"}`, fields: []string{"disabled_reason", "id"}},
		{name: "empty tenant", body: `{"url": "https://hooks.example.com/a", "tenant_id": ""}`, fields: []string{"tenant_id"}},
		{name: "header not a string", body: `{"url": "https://hooks.example.com/a", "headers": {"X-A": 1, "X-B": null}}`, fields: []string{"headers.X-A", "headers.X-B"}},
		{name: "event_types not an array", body: `{"url": "https://hooks.example.com/a", "event_types": "a"}`, fields: []string{"event_types"}},
		{name: "event type not a string", body: `{"url": "https://hooks.example.com/a", "event_types": ["a", 2]}`, fields: []string{"event_types[1]"}},
		{name: "rate limit unknown field", body: `{"url": "https://hooks.example.com/a", "rate_limit": {"per_second": 1, "burst": 2}}`, fields: []string{"rate_limit.burst"}},
		{name: "rate limit fraction", body: `{"url": "https://hooks.example.com/a", "rate_limit": {"per_second": 1.5}}`, fields: []string{"rate_limit.per_second"}},
		{name: "rate limit missing", body: `{"url": "https://hooks.example.com/a", "rate_limit": {}}`, fields: []string{"rate_limit.per_second"}},
		{name: "disabled string", body: `{"url": "https://hooks.example.com/a", "disabled": "yes"}`, fields: []string{"disabled"}},
		{name: "secret not whsec", body: `{"url": "https://hooks.example.com/a", "secret": "abc"}`, fields: []string{"secret"}},
		{name: "secret too short", body: `{"url": "https://hooks.example.com/a", "secret": "whsec_AAAA"}`, fields: []string{"secret"}},
		{name: "shape and value problems together", body: `{"url": "https://10.0.0.1/", "rate_limit": {"per_second": 0}, "x": 1}`,
			fields: []string{"rate_limit.per_second", "url", "x"}},
		{name: "not an object", body: `[]`, fields: []string{"body"}},
		{name: "duplicate key", body: `{"url": "https://a.example.com", "url": "https://b.example.com"}`, malformed: true},
		{name: "trailing data", body: `{"url": "https://a.example.com"} {}`, malformed: true},
		{name: "empty", body: ``, malformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseCreate([]byte(tt.body), rules, t0)
			if tt.fields == nil && !tt.malformed {
				if err != nil {
					t.Fatalf("ParseCreate: %v", err)
				}
				return
			}
			var inv *message.InvalidError
			if !errors.As(err, &inv) || inv.Malformed != tt.malformed {
				t.Fatalf("error %v, want an InvalidError with Malformed %v", err, tt.malformed)
			}
			if !tt.malformed {
				if got := fieldsOf(t, err); !reflect.DeepEqual(got, tt.fields) {
					t.Errorf("fields %q, want %q (%v)", got, tt.fields, err)
				}
			}
			if c.Secret != nil {
				t.Errorf("a refused body returned a secret")
			}
		})
	}
}

func TestParseCreateFields(t *testing.T) {
	t.Parallel()
	secret := GenerateSecret()
	c, err := ParseCreate([]byte(`{"url": "https://hooks.example.com/a", "tenant_id": "acme", "description": "d",
		"headers": {"X-A": "1"}, "event_types": ["a.b", "c.*"], "disabled": true, "rate_limit": {"per_second": 5},
		"metadata": {"k": "v"}, "secret": "`+secret.Reveal()+`"}`), message.Rules{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{TenantID: "acme", URL: "https://hooks.example.com/a", Description: "d",
		Headers: map[string]string{"X-A": "1"}, EventTypes: []string{"a.b", "c.*"}, Disabled: true,
		DisabledReason: ReasonManual, DisabledAt: &t0, RateLimit: &RateLimit{PerSecond: 5}, Metadata: map[string]string{"k": "v"}}
	if !reflect.DeepEqual(c.Endpoint, want) {
		t.Errorf("endpoint\n %+v\nwant\n %+v", c.Endpoint, want)
	}
	if c.Secret == nil || !c.Secret.Equal(secret) {
		t.Errorf("the given secret was not kept")
	}
}

func TestPatch(t *testing.T) {
	t.Parallel()
	later := t0.Add(time.Hour)
	base := valid()
	base.Headers = map[string]string{"X-A": "1", "X-B": "2"}
	tests := []struct {
		name string
		body string
		want func(e *Endpoint)
	}{
		{"empty patch changes nothing", `{}`, func(*Endpoint) {}},
		{"url", `{"url": "https://other.example.com/"}`, func(e *Endpoint) { e.URL = "https://other.example.com/" }},
		{"null clears optional fields", `{"tenant_id": null, "description": null, "event_types": null, "rate_limit": null, "metadata": null, "headers": null}`,
			func(e *Endpoint) {
				e.TenantID, e.Description, e.EventTypes, e.RateLimit, e.Metadata, e.Headers = "", "", nil, nil, nil, nil
			}},
		{"headers merge: set one, remove one", `{"headers": {"X-B": null, "X-C": "3"}}`,
			func(e *Endpoint) { e.Headers = map[string]string{"X-A": "1", "X-C": "3"} }},
		{"arrays replace", `{"event_types": ["x.y"]}`, func(e *Endpoint) { e.EventTypes = []string{"x.y"} }},
		{"rate limit", `{"rate_limit": {"per_second": 7}}`, func(e *Endpoint) { e.RateLimit = &RateLimit{PerSecond: 7} }},
		{"disable", `{"disabled": true}`, func(e *Endpoint) { e.Disabled, e.DisabledReason, e.DisabledAt = true, ReasonManual, &later }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePatch([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			got := p.Apply(base, later)
			want := base.Clone()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n %+v\nwant\n %+v", got, want)
			}
			if base.Headers["X-B"] != "2" {
				t.Error("Apply changed the endpoint it was given")
			}
		})
	}
	// Enabling again clears the reason and the time.
	disabled := base.Clone()
	disabled.Disabled, disabled.DisabledReason, disabled.DisabledAt = true, ReasonManual, &t0
	p, _ := ParsePatch([]byte(`{"disabled": false}`))
	if e := p.Apply(disabled, later); e.Disabled || e.DisabledReason != "" || e.DisabledAt != nil {
		t.Errorf("enable: %+v", e)
	}
	for body, field := range map[string]string{
		`{"url": null}`:           "url",
		`{"secret": "whsec_x"}`:   "secret",
		`{"created_at": "x"}`:     "created_at",
		`{"headers": {"X-A": 1}}`: "headers.X-A",
		`{"metadata": []}`:        "metadata",
		`{"rate_limit": 3}`:       "rate_limit",
		`{"event_types": [null]}`: "event_types[0]",
		`{"unknown": true}`:       "unknown",
	} {
		_, err := ParsePatch([]byte(body))
		if got := fieldsOf(t, err); !reflect.DeepEqual(got, []string{field}) {
			t.Errorf("ParsePatch(%s): fields %q, want [%s]", body, got, field)
		}
	}
}

// FuzzParse feeds arbitrary bodies to the three decoders: they must never panic, must answer with an
// *message.InvalidError or a result, and an accepted create must pass Validate on its own.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"url": "https://hooks.example.com/a"}`,
		`{"url": "https://hooks.example.com/a", "headers": {"X-A": "1"}, "event_types": ["a.*"], "rate_limit": {"per_second": 5}, "metadata": {"k": "v"}}`,
		`{"url": null, "headers": {"X": null}}`, `[]`, `null`, `{"rate_limit": {"per_second": 1e99}}`, "{\"url\": \"\xff\"}",
		`{"event_types": ["*", ".*", "a.*"], "disabled": true}`,
	} {
		f.Add([]byte(s))
	}
	rules := message.Rules{}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseCreate(body, rules, t0)
		var inv *message.InvalidError
		switch {
		case err == nil:
			if ps := Validate(c.Endpoint, rules); len(ps) > 0 {
				t.Fatalf("accepted %q, but Validate finds %v", body, ps)
			}
		case !errors.As(err, &inv) || len(inv.Problems) == 0:
			t.Fatalf("ParseCreate(%q) = %v, want an InvalidError with problems", body, err)
		}
		if next, err := ParseRotate(body); err != nil && (!errors.As(err, &inv) || len(inv.Problems) == 0) || err == nil && next != nil && next.IsZero() {
			t.Fatalf("ParseRotate(%q) = %v, %v", body, next, err)
		}
		p, err := ParsePatch(body)
		if err != nil && (!errors.As(err, &inv) || len(inv.Problems) == 0) {
			t.Fatalf("ParsePatch(%q) = %v, want an InvalidError with problems", body, err)
		}
		if err == nil {
			_ = p.Apply(valid(), t0)
		}
	})
}
