package endpoint

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

const testKey = "0123456789abcdef0123456789abcdef-test-key"

func keyring(t *testing.T, master string) *Keyring {
	t.Helper()
	k, err := NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	tests := []struct {
		in string
		ok bool
	}{
		{"whsec_" + b64(24), true},
		{"whsec_" + b64(32), true},
		{"whsec_" + b64(64), true},
		{"whsec_" + b64(23), false},
		{"whsec_" + b64(65), false},
		{b64(32), false},
		{"whsec_" + strings.TrimRight(b64(32), "="), false}, // unpadded
		{"whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), false},
		{"", false},
	}
	for _, tt := range tests {
		s, err := ParseSecret(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSecret(%q) = %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrSecretFormat) {
				t.Errorf("error %v does not wrap ErrSecretFormat", err)
			}
			if len(tt.in) > 8 && strings.Contains(err.Error(), tt.in[6:]) {
				t.Errorf("error %q repeats the value", err)
			}
			continue
		}
		if s.Reveal() != tt.in {
			t.Errorf("Reveal = %q, want %q", s.Reveal(), tt.in)
		}
	}
	g := GenerateSecret()
	if len(g.Key()) != SecretBytes || g.Equal(GenerateSecret()) {
		t.Errorf("GenerateSecret: %d bytes or not random", len(g.Key()))
	}
	if p, err := ParseSecret(g.Reveal()); err != nil || !p.Equal(g) {
		t.Errorf("a generated secret does not parse back: %v", err)
	}
}

// Every textual form of a secret, and of the keyring, hides the key.
func TestSecretNeverShown(t *testing.T) {
	t.Parallel()
	s := GenerateSecret()
	k := keyring(t, testKey)
	revealed := s.Reveal()
	raw := revealed[len("whsec_"):]
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secret", s, "keyring", k)
	type holder struct{ S Secret }
	forms := map[string]string{
		"String": s.String(), "%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", holder{s}),
		"%#v": fmt.Sprintf("%#v", holder{s}), "%s": fmt.Sprintf("%s", s), "%x": fmt.Sprintf("%x", s),
		"%q": fmt.Sprintf("%q", s), "slog": logged.String(), "keyring %v": fmt.Sprintf("%v %+v %#v", k, k, *k),
	}
	for name, text := range forms {
		if strings.Contains(text, raw) || strings.Contains(text, fmt.Sprintf("%x", s.Key())) {
			t.Errorf("%s shows the secret: %s", name, text)
		}
	}
	if _, err := json.Marshal(holder{s}); err == nil {
		t.Error("json.Marshal of a secret succeeded; it must refuse")
	}
}

func TestNewKeyring(t *testing.T) {
	t.Parallel()
	short := strings.Repeat("k", MinKeyChars-1)
	_, err := NewKeyring(short)
	if !errors.Is(err, ErrKeyTooShort) || strings.Contains(err.Error(), short) {
		t.Errorf("NewKeyring(31 characters) = %v, want ErrKeyTooShort without the key", err)
	}
	if _, err := NewKeyring(strings.Repeat("k", MinKeyChars)); err != nil {
		t.Errorf("NewKeyring(32 characters) = %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k := keyring(t, testKey)
	s := GenerateSecret()
	id, other := NewID(t0), NewID(t0)
	sealed := k.Seal(id, s)
	if !strings.HasPrefix(string(sealed), "v1:") || strings.Contains(string(sealed), s.Reveal()[6:]) {
		t.Fatalf("sealed = %q: want v1: and no plain secret", sealed)
	}
	if k.Seal(id, s) == sealed {
		t.Error("two seals of one secret are equal: the nonce is not fresh")
	}
	got, err := k.Open(id, sealed)
	if err != nil || !got.Equal(s) {
		t.Fatalf("Open = %v; want the secret back", err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)-2] ^= 1
	if tampered[len(tampered)-2] == '-' || tampered[len(tampered)-2] == '_' {
		tampered[len(tampered)-2] = 'A'
	}
	for name, tc := range map[string]struct {
		k  *Keyring
		id string
		v  Sealed
	}{
		"another endpoint":   {k, other, sealed},
		"another key":        {keyring(t, testKey+"2"), id, sealed},
		"unknown version":    {k, id, "v2:" + sealed[3:]},
		"no version":         {k, id, sealed[3:]},
		"damaged":            {k, id, Sealed(tampered)},
		"not base64":         {k, id, "v1:%%%"},
		"shorter than nonce": {k, id, "v1:AAAA"},
	} {
		if _, err := tc.k.Open(tc.id, tc.v); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: Open = %v, want ErrSealed", name, err)
		}
	}
}

func TestRotateAndActiveSecrets(t *testing.T) {
	t.Parallel()
	k := keyring(t, testKey)
	first, second, third := GenerateSecret(), GenerateSecret(), GenerateSecret()
	r := Record{Endpoint: Endpoint{ID: NewID(t0)}}
	r.Secret = k.Seal(r.ID, first)
	active := func(at time.Time) []Secret {
		t.Helper()
		s, err := r.ActiveSecrets(k, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := active(t0); len(got) != 1 || !got[0].Equal(first) {
		t.Fatalf("before rotation: %d secrets", len(got))
	}
	r.Rotate(k, second, t0)
	if got := active(t0.Add(RotationOverlap - time.Second)); len(got) != 2 || !got[0].Equal(second) || !got[1].Equal(first) {
		t.Fatalf("within the overlap: %d secrets, want the new one then the old one", len(got))
	}
	if got := active(t0.Add(RotationOverlap)); len(got) != 1 || !got[0].Equal(second) {
		t.Fatalf("after the overlap: %d secrets, want the new one only", len(got))
	}
	r.Rotate(k, third, t0.Add(time.Hour))
	if got := active(t0.Add(2 * time.Hour)); len(got) != 3 || !got[0].Equal(third) || !got[1].Equal(second) || !got[2].Equal(first) {
		t.Fatalf("two rotations within the overlap: %d secrets, want 3 newest first", len(got))
	}
	// An expired previous secret is dropped at the next rotation; at most MaxPreviousSecrets stay.
	later := t0.Add(RotationOverlap + time.Minute)
	for range MaxPreviousSecrets + 2 {
		r.Rotate(k, GenerateSecret(), later)
	}
	if len(r.Previous) != MaxPreviousSecrets {
		t.Errorf("%d previous secrets kept, want %d", len(r.Previous), MaxPreviousSecrets)
	}
	for _, p := range r.Previous {
		if !p.Until.Equal(later.Add(RotationOverlap)) {
			t.Errorf("kept a previous secret until %v: the expired ones should be gone", p.Until)
		}
	}
	// A record whose secret was sealed for another endpoint does not open.
	swapped := r
	swapped.ID = NewID(t0)
	if _, err := swapped.ActiveSecrets(k, later); !errors.Is(err, ErrSealed) {
		t.Errorf("ActiveSecrets of a swapped ciphertext = %v, want ErrSealed", err)
	}
}

func TestParseRotate(t *testing.T) {
	t.Parallel()
	s := GenerateSecret()
	for body, want := range map[string]string{"": "generate", "  \n": "generate", `{}`: "generate", `{"key": null}`: "generate",
		`{"key": "` + s.Reveal() + `"}`: "given", `{"key": "nope"}`: "key", `{"key": 1}`: "key", `{"secret": "x"}`: "secret",
		`[]`: "body", `{"key": "a"} x`: "malformed"} {
		got, err := ParseRotate([]byte(body))
		var inv *message.InvalidError
		switch want {
		case "generate":
			if err != nil || got != nil {
				t.Errorf("ParseRotate(%q) = %v, %v; want nil, nil (generate)", body, got, err)
			}
		case "given":
			if err != nil || got == nil || !got.Equal(s) {
				t.Errorf("ParseRotate(%q) = %v; want the given secret", body, err)
			}
		case "malformed":
			if !errors.As(err, &inv) || !inv.Malformed {
				t.Errorf("ParseRotate(%q) = %v; want malformed", body, err)
			}
		default:
			if !errors.As(err, &inv) || len(inv.Problems) != 1 || inv.Problems[0].Path() != want {
				t.Errorf("ParseRotate(%q) = %v; want one problem at %s", body, err, want)
			}
		}
	}
}
