package store

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/endpoint"
)

// An endpoint item carries its index keys, no ttl (endpoints stay until deleted), and nothing
// for the fields it leaves empty; it reads back as written.
func TestEndpointItem(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 30, 15, 123_000_000, time.UTC)
	id := endpoint.NewID(at)
	minimal := endpoint.Record{Endpoint: endpoint.Endpoint{ID: id, URL: "https://h.example.com", CreatedAt: at, UpdatedAt: at},
		Secret: "v1:s", Version: 1, WriteToken: "w"}
	full := minimal
	full.TenantID, full.Description = "acme", "d"
	full.Headers, full.Metadata = map[string]string{"X-A": "1"}, map[string]string{"k": "v"}
	full.EventTypes, full.RateLimit = []string{"a.*"}, &endpoint.RateLimit{PerSecond: 3}
	full.Disabled, full.DisabledReason, full.DisabledAt = true, endpoint.ReasonManual, &at
	full.Previous = []endpoint.PreviousSecret{{Sealed: "v1:p", Until: at.Add(time.Hour)}}
	for _, tc := range []struct {
		name     string
		rec      endpoint.Record
		wantAttr []string
		gsi1pk   string
	}{
		{"minimal", minimal, []string{"created_at", "disabled", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "id", "secret",
			"updated_at", "url", "version", "write_token"}, "tenant#"},
		{"every field", full, []string{"created_at", "description", "disabled", "disabled_at", "disabled_reason", "event_types",
			"gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "headers", "id", "metadata", "previous_secrets", "rate_limit_per_second",
			"secret", "tenant_id", "updated_at", "url", "version", "write_token"}, "tenant#acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			item := marshalEndpoint(tc.rec)
			var names []string
			for k := range item {
				names = append(names, k)
			}
			if !sameSet(names, tc.wantAttr) {
				t.Errorf("attributes = %v, want %v", names, tc.wantAttr)
			}
			for name, want := range map[string]string{"gsi1pk": tc.gsi1pk, "gsi1sk": id, "gsi2pk": "endpoints", "gsi2sk": id} {
				if s, _ := item[name].(*types.AttributeValueMemberS); s == nil || s.Value != want {
					t.Errorf("%s = %v, want %q", name, item[name], want)
				}
			}
			got, err := unmarshalEndpoint(item)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.rec) {
				t.Errorf("round trip\n %+v\nwant\n %+v", got, tc.rec)
			}
		})
	}
	for name, edit := range map[string]func(map[string]types.AttributeValue){
		"no secret":         func(i map[string]types.AttributeValue) { delete(i, "secret") },
		"message id":        func(i map[string]types.AttributeValue) { i["id"] = str("msg_06h0td7azajsjqpb4b4ngtdr24") },
		"no version":        func(i map[string]types.AttributeValue) { delete(i, "version") },
		"headers not a map": func(i map[string]types.AttributeValue) { i["headers"] = str("x") },
		"header not a string": func(i map[string]types.AttributeValue) {
			i["headers"] = stringMap(nil)
			i["headers"].(*types.AttributeValueMemberM).Value["X"] = num(1)
		},
		"event type not string": func(i map[string]types.AttributeValue) {
			i["event_types"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{num(1)}}
		},
		"previous not a list": func(i map[string]types.AttributeValue) { i["previous_secrets"] = str("x") },
		"rate not a number":   func(i map[string]types.AttributeValue) { i["rate_limit_per_second"] = str("x") },
	} {
		item := marshalEndpoint(full)
		edit(item)
		if _, err := unmarshalEndpoint(item); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzCursor feeds arbitrary cursors to the decoder: it never panics, refuses with ErrCursor,
// and what it accepts continues after a valid endpoint id of the listing it was asked for.
func FuzzCursor(f *testing.F) {
	id := endpoint.NewID(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	f.Add(encodeCursor("tenant#acme", id), "tenant#acme")
	f.Add(encodeCursor("endpoints", id), "tenant#acme")
	f.Add("eyJwIjoiZW5kcG9pbnRzIiwiYSI6MX0", "endpoints")
	f.Add("%%%", "endpoints")
	f.Fuzz(func(t *testing.T, cursor, pk string) {
		after, err := decodeCursor(cursor, pk)
		switch {
		case err != nil && !errors.Is(err, ErrCursor):
			t.Fatalf("decodeCursor(%q) = %v, want ErrCursor", cursor, err)
		case err == nil && cursor != "" && (!endpoint.ValidID(after) || encodeCursor(pk, after) == ""):
			t.Fatalf("decodeCursor(%q) accepted %q", cursor, after)
		}
	})
}
