package message

import (
	"testing"
	"time"
)

func TestIDForKeyIsStable(t *testing.T) {
	t.Parallel()
	a, b := IDForKey("order-42-shipped"), IDForKey("order-42-shipped")
	if a != b {
		t.Fatalf("same key gave %q and %q", a, b)
	}
	if IDForKey("order-43-shipped") == a {
		t.Fatal("different keys gave the same id")
	}
	if !ValidID(a) {
		t.Fatalf("ValidID(%q) = false", a)
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	a, b := NewID(t0), NewID(t0.Add(time.Millisecond))
	if !(a < b) {
		t.Fatalf("NewID not time-ordered: %q >= %q", a, b)
	}
	if !ValidID(a) || !ValidID(b) {
		t.Fatalf("ValidID false for %q or %q", a, b)
	}
	if first, second := NewID(t0), NewID(t0); first == second {
		t.Fatal("two ids at the same instant are equal")
	}
}

func TestValidIDRefuses(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "msg_", "msg_0", "abc", "MSG_0123456789abcdefghjkmnpqrs", "msg_0123456789abcdefghjkmnpqru", "msg_0123456789abcdefghjkmnpqrs0"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}
