package message

import (
	"encoding/json"
	"testing"
)

func TestFingerprintOfAFanOut(t *testing.T) {
	t.Parallel()
	fp := func(m Message) string {
		t.Helper()
		s, err := Fingerprint(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := Message{EventType: "order.shipped", TenantID: "acme", Payload: json.RawMessage(`{"a":1,"b":2}`)}
	same := base
	same.Payload = json.RawMessage(`{ "b": 2, "a": 1 }`)
	if fp(base) != fp(same) {
		t.Error("the same fan-out with its payload's keys reordered has another fingerprint")
	}
	for name, m := range map[string]Message{
		"another type":   {EventType: "order.paid", TenantID: "acme", Payload: base.Payload},
		"another tenant": {EventType: "order.shipped", TenantID: "globex", Payload: base.Payload},
		"no tenant":      {EventType: "order.shipped", Payload: base.Payload},
		"another body":   {EventType: "order.shipped", TenantID: "acme", Payload: json.RawMessage(`{"a":2,"b":2}`)},
		// Not one destination kind standing for another.
		"to an endpoint": {EndpointID: "ep_06h3230102tq4gpdzyxsvjwpec", Payload: base.Payload},
	} {
		if fp(m) == fp(base) {
			t.Errorf("%s: same fingerprint as %+v", name, base)
		}
	}
}

func TestDeliveryID(t *testing.T) {
	t.Parallel()
	const msgID, ep = "msg_06h3230102tq4gpdzyxsvjwpec", "ep_06h3230102tq4gpdzyxsvjwpec"
	id := DeliveryID(msgID, ep)
	if !ValidDeliveryID(id) || !ValidRecordID(id) || ValidID(id) {
		t.Fatalf("DeliveryID = %q: valid delivery id %v, record id %v, message id %v", id, ValidDeliveryID(id), ValidRecordID(id), ValidID(id))
	}
	if DeliveryID(msgID, ep) != id {
		t.Error("DeliveryID is not the same for the same pair")
	}
	if DeliveryID(msgID, "ep_06h3230102tq4gpdzyxsvjwpee") == id || DeliveryID("msg_06h3230102tq4gpdzyxsvjwpee", ep) == id {
		t.Error("DeliveryID is the same for another pair")
	}
	if !ValidRecordID(msgID) || ValidRecordID(ep) || ValidRecordID("dlv_short") {
		t.Error("ValidRecordID takes the wrong ids")
	}
}
