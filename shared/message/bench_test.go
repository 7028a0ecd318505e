package message

import (
	"strings"
	"testing"
)

func BenchmarkParseBatch500(b *testing.B) {
	ms := make([]string, 500)
	for i := range ms {
		ms[i] = msg("target", headers(`{"X-Tenant":"acme"}`), "payload", `{"user_id":"1","message":"`+strings.Repeat("x", 1000)+`"}`)
	}
	body := []byte(`{"messages":[` + strings.Join(ms, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := (Rules{}).ParseBatch(body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	m, err := Decode([]byte(msg("payload", `{"user_id":"1","message":"`+strings.Repeat("x", 1000)+`","n":[1,2,3]}`)))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Fingerprint(m); err != nil {
			b.Fatal(err)
		}
	}
}
