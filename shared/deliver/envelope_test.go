package deliver

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/pushfn/pushfn/shared/message"
)

var envelopeSeeds = []string{
	`{"id":"msg_06h0t8b6c9jkc38g130fp6wssr","target":{"url":"https://example.com/push"},"payload":{"user_id":"1","message":"Hello"}}`,
	`{"id":"msg_x","target":{"url":"https://e.com","headers":{"X-Tenant":"acme","A":""}},"payload":[1,-2.5e+3,true,false,null,"\u00e9\n"],"expires_at":"2026-12-01T00:00:00Z"}`,
	` { "id" : "a" , "payload" : 0 , "expires_at" : null , "target" : { "headers" : null } } `,
	`{"payload":{"a":{"b":[{}, [], ""]}},"id":"x"}`,
	`{"ID":"case folded","payload":1}`,
	`{"id":"dup","id":"twice","payload":1}`,
	`{"id":"esc\"aped","payload":"x"}`,
	`{"id":"x","payload":01}`,
	`{"id":"x","payload":1.}`,
	`{"id":"x","payload":"bad \x01 control"}`,
	`{"id":"x","payload":{"a" 1}}`,
	`{"id":"x","payload":[1,]}`,
	`{"id":"x","payload":tru}`,
	`{"id":"x","payload":1} trailing`,
	`{"id":"x","expires_at":"yesterday","payload":1}`,
	`{"id":"x","target":{"url":5},"payload":1}`,
	`{"id":"x","target":{"headers":{"a":1}},"payload":1}`,
	`{"id":"x","extra":[1,2],"payload":1}`,
	`{"id":"héllo","payload":"\ud800"}`,
	`{"id":"msg_f","fingerprint":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","target":{"url":"https://e.com"},"payload":1}`,
	`{"id":"x","payload":1,"fingerprint":""}`,
	`{"id":"x","payload":1,"fingerprint":null}`,
	`{"id":"x","payload":1,"fingerprint":"a\u0062c"}`,
	`{"id":"x","payload":1,"fingerprint":"a","fingerprint":"b"}`,
	`{"id":"x","payload":1,"Fingerprint":"folded"}`,
	`{"id":"x","payload":1,"fingerprint":7}`,
	`{"id":"msg_e","endpoint_id":"ep_06h3230102tq4gpdzyxsvjwpec","payload":{"a":1},"fingerprint":"f"}`,
	`{"id":"x","endpoint_id":null,"payload":1}`,
	`{"id":"x","endpoint_id":"a","endpoint_id":"b","payload":1}`,
	`{"id":"x","endpoint_id":5,"payload":1}`,
	`{"id":"dlv_1","message_id":"msg_06h3230102tq4gpdzyxsvjwpec","endpoint_id":"ep_06h3230102tq4gpdzyxsvjwpec","created_at":"2026-12-02T15:04:05.123Z","payload":{"a":1},"fingerprint":"f"}`,
	`{"id":"x","message_id":"a","message_id":"b","payload":1}`,
	`{"id":"x","created_at":null,"payload":1}`,
	`{"id":"x","created_at":"soon","payload":1}`,
	`{"id":"x","created_at":"2026-12-02T15:04:05+02:00","created_at":"2026-12-02T15:04:05Z","payload":1}`,
	`{"id":"msg_f","event_type":"order.shipped","tenant_id":"acme","payload":1,"fingerprint":"f"}`,
	`{"id":"msg_s","endpoint_id":"ep_1","payload":1,"fingerprint":"f","slot":8824975200,"slot_rate":5}`,
	`{"id":"x","payload":1,"slot":0,"slot_rate":0}`,
	`{"id":"x","payload":1,"slot":-5}`,
	`{"id":"x","payload":1,"slot":1.5}`,
	`{"id":"x","payload":1,"slot":1e3}`,
	`{"id":"x","payload":1,"slot":007}`,
	`{"id":"x","payload":1,"slot":"7"}`,
	`{"id":"x","payload":1,"slot":null,"slot_rate":null}`,
	`{"id":"x","payload":1,"slot":1,"slot":2}`,
	`{"id":"x","payload":1,"slot":99999999999999999999}`,
	`{"id":"x","payload":1,"slot_rate":9223372036854775807}`,
	`{"id":"x","payload":1,"slot":123456789012345678}`,
	`[]`, ``, `{`, `null`,
}

func TestDecodeEnvelopeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range envelopeSeeds {
		checkEnvelope(t, s)
	}
	deep := `{"id":"x","payload":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`
	checkEnvelope(t, deep)
}

// The fast path decodes the slot of a re-queued copy itself, not through encoding/json.
func TestDecodeEnvelopeFastPathSlot(t *testing.T) {
	t.Parallel()
	env, err := fastEnvelope(`{"id":"msg_s","endpoint_id":"ep_1","payload":1,"fingerprint":"f","slot":8824975200,"slot_rate":5}`)
	if err != nil || env.Slot != 8824975200 || env.SlotRate != 5 {
		t.Fatalf("fastEnvelope = %+v, %v; want slot 8824975200 at rate 5", env, err)
	}
}

func TestDecodeEnvelopeFastPathCopiesNothing(t *testing.T) {
	t.Parallel()
	body := envelopeSeeds[0]
	env, err := fastEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(env.Payload) != `{"user_id":"1","message":"Hello"}` || env.ID != "msg_06h0t8b6c9jkc38g130fp6wssr" || env.Target.URL != "https://example.com/push" {
		t.Fatalf("decoded %+v", env)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(body)))
	if p := uintptr(unsafe.Pointer(&env.Payload[0])); p < start || p >= start+uintptr(len(body)) {
		t.Fatal("the payload was copied out of the body")
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkEnvelope(t, s) })
}

// checkEnvelope asserts decodeEnvelope agrees with json.Unmarshal on s.
func checkEnvelope(t *testing.T, s string) {
	t.Helper()
	var want message.Envelope
	wantErr := json.Unmarshal([]byte(s), &want)
	got, err := decodeEnvelope(s)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, encoding/json %v", s, err, wantErr)
	}
	if err != nil {
		return
	}
	if !equalEnvelopes(got, want) {
		t.Fatalf("%q: decoded %+v, encoding/json %+v", s, got, want)
	}
}

func equalEnvelopes(a, b message.Envelope) bool {
	if a.ID != b.ID || a.Fingerprint != b.Fingerprint || a.Target.URL != b.Target.URL || string(a.Payload) != string(b.Payload) || !reflect.DeepEqual(a.Target.Headers, b.Target.Headers) ||
		a.EndpointID != b.EndpointID || a.MessageID != b.MessageID || a.EventType != b.EventType || a.TenantID != b.TenantID || a.Slot != b.Slot || a.SlotRate != b.SlotRate {
		return false
	}
	return equalTimes(a.ExpiresAt, b.ExpiresAt) && equalTimes(a.CreatedAt, b.CreatedAt)
}

func equalTimes(a, b *time.Time) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return a == nil || a.Equal(*b) && a.Location().String() == b.Location().String()
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	body, _ := json.Marshal(message.Envelope{ID: message.NewID(time.Now()), Target: message.Target{URL: "https://hooks.example.com/push"},
		Payload:     json.RawMessage(`{"d":"` + strings.Repeat("x", 1016) + `"}`),
		Fingerprint: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
	s := string(body)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			if _, err := decodeEnvelope(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			var env message.Envelope
			if err := json.Unmarshal([]byte(s), &env); err != nil {
				b.Fatal(err)
			}
		}
	})
}
