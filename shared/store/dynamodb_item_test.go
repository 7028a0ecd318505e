package store

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/message"
)

func TestItemRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 10, 30, 15, 123_000_000, time.UTC)
	expires := at.Add(time.Hour)
	for _, tc := range []struct {
		name     string
		rec      message.Record
		wantAttr []string
	}{
		{
			name:     "minimal",
			rec:      message.Record{ID: "msg_1", Status: message.Accepted, TTL: at.Truncate(time.Second)},
			wantAttr: []string{"attempts", "id", "status", "ttl"},
		},
		{
			name: "every_field",
			rec: message.Record{
				ID: message.NewID(at), Status: message.Delivering, Fingerprint: "f", IdempotencyKey: "k", TargetHost: "h", EndpointID: "ep_1",
				Attempts: 7, LeaseToken: "tok", LeaseUntil: at.Add(time.Minute),
				LastAttempt: &message.Attempt{At: at, StatusCode: 500, Error: "e", DurationMS: 12},
				CreatedAt:   at, UpdatedAt: at, DeliveredAt: at, ExpiresAt: &expires, TTL: at.Truncate(time.Second),
				Copy:        []byte(`{"id":"msg_2","payload":{"a":"\u00e9"}}`),
				History:     []message.Attempt{{At: at, StatusCode: 404, DurationMS: 3}, {At: at, Error: "endpoint_disabled"}},
				ReopenToken: "r", ReopenedAt: at,
			},
			wantAttr: []string{
				"attempts", "created_at", "delivered_at", "endpoint_id", "expires_at", "fingerprint", "gsi2pk", "gsi2sk", "id",
				"idempotency_key", "last_attempt", "lease_token", "lease_until", "status", "target_host", "ttl", "updated_at",
				"last_attempt_list", "copy_gz", "history", "reopen_token", "reopened_at",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			item := marshalRecord(tc.rec)
			var names []string
			for k := range item {
				names = append(names, k)
			}
			if !sameSet(names, tc.wantAttr) {
				t.Errorf("attributes = %v, want %v", names, tc.wantAttr)
			}
			got, err := unmarshalRecord(item)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.rec) {
				t.Errorf("round trip = %+v, want %+v", got, tc.rec)
			}
		})
	}
}

func TestItemAttributeTypes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 10, 30, 15, 123_000_000, time.UTC)
	item := marshalRecord(message.Record{
		ID: "msg_1", Status: message.Delivering, LeaseUntil: at, CreatedAt: at, TTL: at.Truncate(time.Second),
	})
	for name, want := range map[string]types.AttributeValue{
		"lease_until": &types.AttributeValueMemberN{Value: "1795516215123"},
		"ttl":         &types.AttributeValueMemberN{Value: "1795516215"},
		"created_at":  &types.AttributeValueMemberS{Value: "2026-11-24T10:30:15.123Z"},
		"id":          &types.AttributeValueMemberS{Value: "msg_1"},
	} {
		if !reflect.DeepEqual(item[name], want) {
			t.Errorf("%s = %#v, want %#v", name, item[name], want)
		}
	}
}

func TestItemMalformed(t *testing.T) {
	t.Parallel()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	for _, tc := range []struct {
		name string
		item map[string]types.AttributeValue
	}{
		{"no_id", map[string]types.AttributeValue{"status": s("accepted")}},
		{"no_status", map[string]types.AttributeValue{"id": s("msg_1")}},
		{"status_number", map[string]types.AttributeValue{"id": s("msg_1"), "status": n("1")}},
		{"attempts_string", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("accepted"), "attempts": s("1")}},
		{"attempts_fraction", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("accepted"), "attempts": n("1.5")}},
		{"bad_time", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("accepted"), "created_at": s("yesterday")}},
		{"last_attempt_string", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("accepted"), "last_attempt": s("x")}},
		{"last_attempt_bad_field", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("accepted"),
			"last_attempt": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"status_code": s("500")}}}},
		{"copy_string", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("failed"), "copy_gz": s("x")}},
		{"copy_not_gzip", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("failed"),
			"copy_gz": &types.AttributeValueMemberB{Value: []byte(`{"id":"msg_1"}`)}}},
		{"copy_truncated", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("failed"),
			"copy_gz": &types.AttributeValueMemberB{Value: truncatedCopy()}}},
		{"history_map", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("failed"),
			"history": &types.AttributeValueMemberM{}}},
		{"history_bad_attempt", map[string]types.AttributeValue{"id": s("msg_1"), "status": s("failed"),
			"history": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("x")}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := unmarshalRecord(tc.item); !errors.Is(err, ErrMalformed) {
				t.Errorf("error = %v, want ErrMalformed", err)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]bool, len(a))
	for _, s := range a {
		seen[s] = true
	}
	for _, s := range b {
		if !seen[s] {
			return false
		}
	}
	return true
}

// truncatedCopy is a kept copy cut short: its gzip stream ends early.
func truncatedCopy() []byte {
	gz, _ := compressCopy([]byte(`{"id":"msg_1","payload":{"user_id":"1","message":"Hello"}}`))
	return gz[:len(gz)-10]
}

// A copy that would expand past any queued message is malformed, not read into memory whole.
func TestCopyDecompressionBounded(t *testing.T) {
	t.Parallel()
	gz, ok := compressCopy(make([]byte, maxCopyBytes+1))
	if !ok {
		t.Fatalf("%d zero bytes did not compress under %d", maxCopyBytes+1, MaxKeptCopyBytes)
	}
	if _, err := decompressCopy(gz); !errors.Is(err, ErrMalformed) {
		t.Fatalf("decompress %d bytes: %v, want ErrMalformed", maxCopyBytes+1, err)
	}
	if b, err := decompressCopy(mustCompress(t, make([]byte, maxCopyBytes))); err != nil || len(b) != maxCopyBytes {
		t.Fatalf("decompress %d bytes: %d bytes, %v", maxCopyBytes, len(b), err)
	}
}

func mustCompress(t *testing.T, b []byte) []byte {
	t.Helper()
	gz, ok := compressCopy(b)
	if !ok {
		t.Fatalf("%d bytes did not compress under %d", len(b), MaxKeptCopyBytes)
	}
	return gz
}
