package message

import (
	"encoding/json"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the decoder and validator: they never panic, and every
// message they accept re-encodes to a body that is accepted again, with the same fingerprint.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(msg()))
	f.Add([]byte(msg("target", `{"url":"https://h.example/p","headers":{"X-A":"1"}}`, "idempotency_key", `"k"`, "delay_seconds", "5", "expires_at", `"2030-01-01T00:00:00Z"`)))
	f.Add([]byte(msg("payload", `{"a":[1,2.5e3,"<&>",null,true,{"b":"\u00e9"}]}`)))
	f.Add([]byte(msg("target", target("https://0x7f.1/"))))
	f.Add([]byte(msg("target", target("https://[::ffff:127.0.0.1]/"))))
	f.Add([]byte(`{"messages":[` + msg() + `,` + msg() + `]}`))
	f.Add([]byte(msg("target", "-", "endpoint_id", `"ep_06h3230102tq4gpdzyxsvjwpec"`)))
	f.Add([]byte(msg("target", "-", "event_type", `"order.shipped"`, "tenant_id", `"acme"`)))
	f.Add([]byte(`{"payload":1,"payload":2}`))
	f.Add([]byte("{\"payload\":\"\xff\"}"))
	f.Add([]byte(`[[[[[[]]]]]]`))
	f.Add([]byte(``))
	rules := Rules{AllowHTTPTargets: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := rules.Parse(body, testNow)
		if err == nil {
			again, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", m, err)
			}
			m2, err := rules.Parse(again, testNow)
			if err != nil {
				t.Fatalf("re-encoded %s refused: %v", again, err)
			}
			fp1, err1 := Fingerprint(m)
			fp2, err2 := Fingerprint(m2)
			if err1 != nil || err2 != nil || fp1 != fp2 {
				t.Fatalf("fingerprints differ after re-encoding: %s %v / %s %v", fp1, err1, fp2, err2)
			}
			if _, err := EncodeEnvelope(Envelope{ID: "msg_x", Target: m.Target, EndpointID: m.EndpointID, Payload: m.Payload, ExpiresAt: m.ExpiresAt}); err != nil {
				t.Fatalf("envelope: %v", err)
			}
		}
		ms, err := rules.ParseBatch(body, testNow)
		if err == nil {
			again, err := json.Marshal(struct {
				Messages []Message `json:"messages"`
			}{ms})
			if err != nil {
				t.Fatalf("re-encode batch: %v", err)
			}
			if _, err := rules.ParseBatch(again, testNow); err != nil {
				t.Fatalf("re-encoded batch %s refused: %v", again, err)
			}
		}
	})
}
