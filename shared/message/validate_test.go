package message

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

const okURL = "https://hooks.example.com/push"

// msg returns a valid single-message body with the given members replaced or added; a value of
// "-" removes the member.
func msg(members ...string) string {
	base := map[string]string{
		"target":  `{"url":"` + okURL + `"}`,
		"payload": `{"user_id":"1","message":"Hello"}`,
	}
	order := []string{"target", "payload"}
	for i := 0; i+1 < len(members); i += 2 {
		k, v := members[i], members[i+1]
		if _, ok := base[k]; !ok {
			order = append(order, k)
		}
		base[k] = v
	}
	var parts []string
	for _, k := range order {
		if v := base[k]; v != "-" {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func target(url string) string { return `{"url":` + fmt.Sprintf("%q", url) + `}` }

func headers(h string) string { return `{"url":"` + okURL + `","headers":` + h + `}` }

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		rules Rules
	}{
		{"minimal", msg(), Rules{}},
		{"all fields", msg("target", `{"url":"https://hooks.example.com/push?a=1#x","headers":{"X-Tenant":"acme","Authorization":"Bearer t"}}`, "idempotency_key", `"order-42-shipped"`, "delay_seconds", "900", "expires_at", `"2026-12-01T00:00:00Z"`), Rules{}},
		{"nulls for optional fields", msg("idempotency_key", "null", "delay_seconds", "null", "expires_at", "null", "target", `{"url":"`+okURL+`","headers":null}`), Rules{}},
		{"payload string", msg("payload", `"hi"`), Rules{}},
		{"payload number", msg("payload", `1e3`), Rules{}},
		{"payload false", msg("payload", `false`), Rules{}},
		{"payload array", msg("payload", `[1,2,{"a":[]}]`), Rules{}},
		{"payload unicode", msg("payload", `{"m":"héllo \u00e9 😀"}`), Rules{}},
		{"delay zero", msg("delay_seconds", "0"), Rules{}},
		{"expires with offset", msg("expires_at", `"2026-12-01T01:00:00.5+02:00"`), Rules{}},
		{"key of 255 chars", msg("idempotency_key", `"`+strings.Repeat("k", 255)+`"`), Rules{}},
		{"key with spaces and symbols", msg("idempotency_key", `"a b~!{}"`), Rules{}},
		{"host with port", msg("target", target("https://hooks.example.com:8443/p")), Rules{}},
		{"public IPv4", msg("target", target("https://93.184.216.34/p")), Rules{}},
		{"public IPv6", msg("target", target("https://[2606:4700::1111]/p")), Rules{}},
		{"trailing dot name", msg("target", target("https://hooks.example.com./p")), Rules{}},
		{"uppercase scheme and host", msg("target", target("HTTPS://HOOKS.Example.COM/p")), Rules{}},
		{"20 headers", msg("target", headers(manyHeaders(20))), Rules{}},
		{"http allowed", msg("target", target("http://hooks.example.com/p")), Rules{AllowHTTPTargets: true}},
		{"loopback allowed", msg("target", target("http://127.0.0.1:8080/p")), Rules{AllowHTTPTargets: true, AllowPrivateTargets: true}},
		{"localhost allowed", msg("target", target("https://localhost/p")), Rules{AllowPrivateTargets: true}},
		{"payload at limit", msg("payload", `"`+strings.Repeat("a", 98)+`"`), Rules{MaxPayloadBytes: 100}},
		{"whitespace around", " \n" + msg() + "\n ", Rules{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := tt.rules.Parse([]byte(tt.body), testNow); err != nil {
				t.Fatalf("Parse(%s) = %v", tt.body, err)
			}
		})
	}
}

func manyHeaders(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"X-H%d":"v"`, i))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// invalidSingle lists bodies of the single route that must be refused, with the field path the
// first problem names ("body" for malformed JSON) and whether it is malformed.
var invalidSingle = []struct {
	name      string
	body      string
	field     string
	malformed bool
}{
	{"empty body", ``, "body", true},
	{"not JSON", `hello`, "body", true},
	{"truncated", `{"target":`, "body", true},
	{"trailing comma", `{"payload":1,}`, "body", true},
	{"single quotes", `{'payload':1}`, "body", true},
	{"trailing data", msg() + ` {}`, "body", true},
	{"trailing garbage", msg() + `x`, "body", true},
	{"invalid UTF-8", "{\"payload\":\"\xff\"}", "body", true},
	{"duplicate key", `{"payload":1,"payload":2,"target":{"url":"` + okURL + `"}}`, "body", true},
	{"duplicate key in payload", msg("payload", `{"a":1,"a":2}`), "body", true},
	{"NaN", msg("payload", `NaN`), "body", true},
	{"too deep", msg("payload", strings.Repeat("[", 300)+strings.Repeat("]", 300)), "body", true},
	{"comment", `{/*c*/"payload":1}`, "body", true},
	{"array body", `[` + msg() + `]`, "", false},
	{"string body", `"hello"`, "", false},
	{"null body", `null`, "", false},
	{"missing target", msg("target", "-"), "target", false},
	{"missing payload", msg("payload", "-"), "payload", false},
	{"null payload", msg("payload", "null"), "payload", false},
	{"target string", msg("target", `"https://x.example"`), "target", false},
	{"target null", msg("target", `null`), "target", false},
	{"url missing", msg("target", `{}`), "target.url", false},
	{"url number", msg("target", `{"url":5}`), "target.url", false},
	{"url empty", msg("target", target("")), "target.url", false},
	{"unknown field", msg("priority", `1`), "priority", false},
	{"unknown field in target", msg("target", `{"url":"`+okURL+`","method":"PUT"}`), "target.method", false},
	{"headers array", msg("target", headers(`["a"]`)), "target.headers", false},
	{"header value number", msg("target", headers(`{"X-A":1}`)), "target.headers.X-A", false},
	{"key number", msg("idempotency_key", `42`), "idempotency_key", false},
	{"key empty", msg("idempotency_key", `""`), "idempotency_key", false},
	{"key too long", msg("idempotency_key", `"`+strings.Repeat("k", 256)+`"`), "idempotency_key", false},
	{"key non-ASCII", msg("idempotency_key", `"clé"`), "idempotency_key", false},
	{"key control char", msg("idempotency_key", `"a\tb"`), "idempotency_key", false},
	{"delay string", msg("delay_seconds", `"10"`), "delay_seconds", false},
	{"delay fraction", msg("delay_seconds", `1.5`), "delay_seconds", false},
	{"delay negative", msg("delay_seconds", `-1`), "delay_seconds", false},
	{"delay over 900", msg("delay_seconds", `901`), "delay_seconds", false},
	{"delay huge", msg("delay_seconds", `1e999`), "delay_seconds", false},
	{"expires not a time", msg("expires_at", `"tomorrow"`), "expires_at", false},
	{"expires number", msg("expires_at", `1767225600`), "expires_at", false},
	{"expires without zone", msg("expires_at", `"2026-12-01T00:00:00"`), "expires_at", false},
	{"expires in the past", msg("expires_at", `"2020-01-01T00:00:00Z"`), "expires_at", false},
	{"expires now", msg("expires_at", `"2026-11-24T10:00:00Z"`), "expires_at", false},
	{"payload too large", msg("payload", `"`+strings.Repeat("a", DefaultMaxPayloadBytes)+`"`), "payload", false},
	{"relative URL", msg("target", target("/push")), "target.url", false},
	{"no scheme", msg("target", target("hooks.example.com/push")), "target.url", false},
	{"ftp URL", msg("target", target("ftp://hooks.example.com/f")), "target.url", false},
	{"javascript URL", msg("target", target("javascript:alert(1)")), "target.url", false},
	{"plain http", msg("target", target("http://hooks.example.com/push")), "target.url", false},
	{"opaque https", msg("target", target("https:hooks.example.com")), "target.url", false},
	{"user-info", msg("target", target("https://user:pw@hooks.example.com/")), "target.url", false},
	{"user only", msg("target", target("https://user@hooks.example.com/")), "target.url", false},
	{"over-long URL", msg("target", target("https://hooks.example.com/"+strings.Repeat("a", MaxURLBytes))), "target.url", false},
	{"no host", msg("target", target("https:///push")), "target.url", false},
	{"port zero", msg("target", target("https://hooks.example.com:0/")), "target.url", false},
	{"port too big", msg("target", target("https://hooks.example.com:70000/")), "target.url", false},
	{"space in host", msg("target", target("https://hooks example.com/")), "target.url", false},
	{"non-ASCII host", msg("target", target("https://bücher.example/")), "target.url", false},
	{"fullwidth digits host", msg("target", target("https://１２７.０.０.１/")), "target.url", false},
	{"CRLF in URL", msg("target", target("https://hooks.example.com/\r\nX: y")), "target.url", false},
	{"loopback", msg("target", target("https://127.0.0.1/")), "target.url", false},
	{"loopback other", msg("target", target("https://127.1.2.3:8443/")), "target.url", false},
	{"loopback trailing dot", msg("target", target("https://127.0.0.1./")), "target.url", false},
	{"loopback decimal", msg("target", target("https://2130706433/")), "target.url", false},
	{"loopback octal", msg("target", target("https://017700000001/")), "target.url", false},
	{"loopback hex", msg("target", target("https://0x7f000001/")), "target.url", false},
	{"loopback hex dotted", msg("target", target("https://0x7f.0x0.0x0.0x1/")), "target.url", false},
	{"loopback short", msg("target", target("https://127.1/")), "target.url", false},
	{"loopback mixed", msg("target", target("https://0x7f.1/")), "target.url", false},
	{"loopback octal dotted", msg("target", target("https://0177.0.0.01/")), "target.url", false},
	{"zero address", msg("target", target("https://0/")), "target.url", false},
	{"zero dotted", msg("target", target("https://0.0.0.0/")), "target.url", false},
	{"metadata", msg("target", target("https://169.254.169.254/latest/meta-data/")), "target.url", false},
	{"metadata decimal", msg("target", target("https://2852039166/")), "target.url", false},
	{"metadata hex", msg("target", target("https://0xa9fea9fe/")), "target.url", false},
	{"metadata IPv4-mapped", msg("target", target("https://[::ffff:169.254.169.254]/")), "target.url", false},
	{"metadata IPv4-mapped hex", msg("target", target("https://[::ffff:a9fe:a9fe]/")), "target.url", false},
	{"metadata IPv6 (EC2)", msg("target", target("https://[fd00:ec2::254]/")), "target.url", false},
	{"private 10", msg("target", target("https://10.0.0.1/")), "target.url", false},
	{"private 172", msg("target", target("https://172.16.5.4/")), "target.url", false},
	{"private 192", msg("target", target("https://192.168.0.1/")), "target.url", false},
	{"CGNAT", msg("target", target("https://100.64.0.1/")), "target.url", false},
	{"multicast", msg("target", target("https://224.0.0.1/")), "target.url", false},
	{"broadcast", msg("target", target("https://255.255.255.255/")), "target.url", false},
	{"IPv6 loopback", msg("target", target("https://[::1]/")), "target.url", false},
	{"IPv6 loopback long", msg("target", target("https://[0:0:0:0:0:0:0:1]/")), "target.url", false},
	{"IPv6 unspecified", msg("target", target("https://[::]/")), "target.url", false},
	{"IPv6 link-local", msg("target", target("https://[fe80::1]/")), "target.url", false},
	{"IPv6 zone", msg("target", target("https://[fe80::1%25eth0]/")), "target.url", false},
	{"IPv6 ULA", msg("target", target("https://[fc00::1]/")), "target.url", false},
	{"IPv4-mapped loopback", msg("target", target("https://[::ffff:127.0.0.1]/")), "target.url", false},
	{"IPv4-compatible loopback", msg("target", target("https://[::127.0.0.1]/")), "target.url", false},
	{"NAT64 private", msg("target", target("https://[64:ff9b::a00:1]/")), "target.url", false},
	{"bad IPv6", msg("target", target("https://[::g]/")), "target.url", false},
	{"IPv4 in brackets", msg("target", target("https://[127.0.0.1]/")), "target.url", false},
	{"IPv4 part overflow", msg("target", target("https://256.0.0.1/")), "target.url", false},
	{"IPv4 five parts", msg("target", target("https://1.2.3.4.5/")), "target.url", false},
	{"name ending in number", msg("target", target("https://hooks.123/")), "target.url", false},
	{"localhost", msg("target", target("https://localhost/")), "target.url", false},
	{"localhost upper and dot", msg("target", target("https://LOCALHOST./")), "target.url", false},
	{"sub.localhost", msg("target", target("https://api.localhost:8443/")), "target.url", false},
	{"percent-encoded loopback", msg("target", target("https://%31%32%37.0.0.1/")), "target.url", false},
	{"empty label", msg("target", target("https://hooks..example.com/")), "target.url", false},
	{"header CR", msg("target", headers(`{"X-A":"a\rb"}`)), "target.headers.X-A", false},
	{"header LF", msg("target", headers(`{"X-A":"a\nX-Injected: 1"}`)), "target.headers.X-A", false},
	{"header NUL", msg("target", headers(`{"X-A":"a\u0000b"}`)), "target.headers.X-A", false},
	{"header name with colon", msg("target", headers(`{"X-A: b":"v"}`)), "target.headers.X-A: b", false},
	{"header name with space", msg("target", headers(`{"X A":"v"}`)), "target.headers.X A", false},
	{"header name empty", msg("target", headers(`{"":"v"}`)), "target.headers.", false},
	{"header name CRLF", msg("target", headers(`{"X-A\r\nHost":"v"}`)), "target.headers.X-A\r\nHost", false},
	{"header Host", msg("target", headers(`{"Host":"internal"}`)), "target.headers.Host", false},
	{"header content-length", msg("target", headers(`{"content-length":"0"}`)), "target.headers.content-length", false},
	{"header Transfer-Encoding", msg("target", headers(`{"Transfer-Encoding":"chunked"}`)), "target.headers.Transfer-Encoding", false},
	{"header Connection", msg("target", headers(`{"Connection":"close"}`)), "target.headers.Connection", false},
	{"header webhook-signature", msg("target", headers(`{"webhook-signature":"v1,x"}`)), "target.headers.webhook-signature", false},
	{"header webhook-id", msg("target", headers(`{"Webhook-Id":"x"}`)), "target.headers.Webhook-Id", false},
	{"header repeated by case", msg("target", headers(`{"X-A":"1","x-a":"2"}`)), "target.headers.x-a", false},
	{"21 headers", msg("target", headers(manyHeaders(21))), "target.headers", false},
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range invalidSingle {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Rules{}.Parse([]byte(tt.body), testNow)
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Parse(%q) error = %v, want *InvalidError", tt.body, err)
			}
			if ie.Malformed != tt.malformed {
				t.Errorf("Malformed = %v, want %v (%v)", ie.Malformed, tt.malformed, err)
			}
			if got := ie.Problems[0].Path(); tt.field != "" && got != tt.field || tt.field == "" && got != "body" {
				t.Errorf("first problem at %q, want %q (%v)", got, tt.field, err)
			}
			for _, p := range ie.Problems {
				if p.Reason == "" {
					t.Errorf("problem at %s has no reason", p.Path())
				}
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	body := msg("target", `{"url":"ftp://x","headers":{"Host":"a","X-B":"c\nd"}}`, "idempotency_key", `""`, "delay_seconds", "-3", "expires_at", `"2020-01-01T00:00:00Z"`, "extra", "1")
	_, err := Rules{}.Parse([]byte(body), testNow)
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, p := range ie.Problems {
		got = append(got, p.Path())
	}
	want := []string{"delay_seconds", "expires_at", "extra", "idempotency_key", "target.headers.Host", "target.headers.X-B", "target.url"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("problems at %v, want %v", got, want)
	}
}

func TestParseBatch(t *testing.T) {
	t.Parallel()
	batch := func(ms ...string) string { return `{"messages":[` + strings.Join(ms, ",") + `]}` }
	many := func(n int) string {
		ms := make([]string, n)
		for i := range ms {
			ms[i] = msg()
		}
		return batch(ms...)
	}
	if ms, err := (Rules{}).ParseBatch([]byte(many(500)), testNow); err != nil || len(ms) != 500 {
		t.Fatalf("500 messages: %d, %v", len(ms), err)
	}
	tests := []struct {
		name  string
		body  string
		paths []string
	}{
		{"empty batch", batch(), []string{"messages"}},
		{"501 messages", many(501), []string{"messages"}},
		{"missing messages", `{}`, []string{"messages"}},
		{"null messages", `{"messages":null}`, []string{"messages"}},
		{"messages object", `{"messages":{}}`, []string{"messages"}},
		{"unknown top field", `{"messages":[` + msg() + `],"extra":1}`, []string{"extra"}},
		{"top-level array", `[` + msg() + `]`, []string{"body"}},
		{"element not object", batch(msg(), `1`), []string{"messages[1]"}},
		{"element null", batch(msg(), `null`, msg("delay_seconds", "-1")), []string{"messages[1]", "messages[2].delay_seconds"}},
		{"every invalid message", batch(msg(), msg("target", target("https://10.0.0.1/")), msg(), msg("payload", "-", "delay_seconds", "901")),
			[]string{"messages[1].target.url", "messages[3].delay_seconds", "messages[3].payload"}},
		{"duplicate keys in batch", batch(msg("idempotency_key", `"k"`), msg("idempotency_key", `"j"`), msg("idempotency_key", `"k"`)), []string{"messages[2].idempotency_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Rules{}.ParseBatch([]byte(tt.body), testNow)
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, p := range ie.Problems {
				got = append(got, p.Path())
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.paths) {
				t.Fatalf("problems at %v, want %v (%v)", got, tt.paths, err)
			}
		})
	}
}

func TestDecodeKeepsPayloadBytes(t *testing.T) {
	t.Parallel()
	payload := `{ "b": [1, 2.50],  "a": "<&>" }`
	m, err := Decode([]byte(msg("payload", payload)))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != payload {
		t.Fatalf("payload = %s, want %s", m.Payload, payload)
	}
	body, err := EncodeEnvelope(Envelope{ID: "msg_x", Target: m.Target, Payload: m.Payload})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"msg_x","target":{"url":"` + okURL + `"},"payload":` + payload + `}`
	if string(body) != want {
		t.Fatalf("envelope = %s\nwant       %s", body, want)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := Message{Target: Target{URL: okURL, Headers: map[string]string{"X-A": "1"}}, Payload: []byte(`{"a":1,"b":[true,null]}`)}
	fp := func(m Message) string {
		s, err := Fingerprint(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	same := base
	same.Payload = []byte(` { "b" : [ true , null ] , "a" : 1 } `)
	same.Target.Headers = map[string]string{"x-a": "1"}
	same.DelaySeconds = 30
	exp := testNow.Add(time.Hour)
	same.ExpiresAt = &exp
	same.IdempotencyKey = "k"
	if fp(base) != fp(same) {
		t.Fatal("fingerprint depends on whitespace, key order, header case, delay, expiry or key")
	}
	for name, change := range map[string]func(*Message){
		"url":          func(m *Message) { m.Target.URL += "x" },
		"header value": func(m *Message) { m.Target.Headers = map[string]string{"X-A": "2"} },
		"header added": func(m *Message) { m.Target.Headers = map[string]string{"X-A": "1", "X-B": "1"} },
		"payload":      func(m *Message) { m.Payload = []byte(`{"a":2,"b":[true,null]}`) },
	} {
		m := base
		change(&m)
		if fp(m) == fp(base) {
			t.Errorf("changing the %s keeps the fingerprint", name)
		}
	}
	if _, err := Fingerprint(Message{Payload: []byte(`{`)}); err == nil {
		t.Error("Fingerprint of an invalid payload returned no error")
	}
}

func TestTargetHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://Hooks.Example.COM./p":     "hooks.example.com",
		"https://hooks.example.com:8443/p": "hooks.example.com",
		"https://[2606:4700::1111]:443/":   "2606:4700::1111",
		"::":                               "",
	} {
		if got := TargetHost(in); got != want {
			t.Errorf("TargetHost(%q) = %q, want %q", in, got, want)
		}
	}
}
