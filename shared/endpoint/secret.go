package endpoint

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Secret sizes: a generated secret has SecretBytes random bytes; a given one must decode to
// MinSecretBytes to MaxSecretBytes (Standard Webhooks asks for 24 to 64).
const (
	SecretBytes    = 32
	MinSecretBytes = 24
	MaxSecretBytes = 64
	secretPrefix   = "whsec_"
)

// RotationOverlap is how long a rotated-out secret keeps signing beside the new one, so that
// receivers can switch without a failed delivery.
const RotationOverlap = 24 * time.Hour

// MaxPreviousSecrets bounds the rotated-out secrets kept signing at once: rotations faster than
// that drop the oldest early, so an item and a signature header stay small.
const MaxPreviousSecrets = 4

// MinKeyChars is the shortest ENDPOINT_SECRETS_KEY accepted.
const MinKeyChars = 32

// Errors of secrets and their encryption. Test them with errors.Is.
var (
	// ErrSecretFormat: a given secret is not whsec_ and standard base64 of 24 to 64 bytes.
	ErrSecretFormat = errors.New("secret is not whsec_ followed by base64 of 24 to 64 bytes")
	// ErrKeyTooShort: the key secrets are encrypted with is under MinKeyChars characters.
	ErrKeyTooShort = errors.New("endpoint secrets key is too short")
	// ErrSealed: a stored secret does not decrypt: another key, another endpoint's ciphertext,
	// an unknown version or a damaged value.
	ErrSealed = errors.New("stored endpoint secret does not decrypt")
)

// redacted is what every textual form of a secret shows.
const redacted = "whsec_[redacted]"

// Secret is an endpoint's signing secret. Its key is shown only by Reveal; String, %v, %#v,
// slog and JSON never show it.
type Secret struct {
	key []byte
}

// GenerateSecret returns a new random secret of SecretBytes bytes.
func GenerateSecret() Secret {
	key := make([]byte, SecretBytes)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+).
	return Secret{key: key}
}

// ParseSecret reads a secret in the Standard Webhooks form, whsec_<base64>. Its error never
// repeats the value.
func ParseSecret(s string) (Secret, error) {
	raw, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: it does not start with whsec_", ErrSecretFormat)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: the part after whsec_ is not standard base64", ErrSecretFormat)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("%w: it decodes to %d bytes", ErrSecretFormat, len(key))
	}
	return Secret{key: key}, nil
}

// Reveal returns the secret in its whsec_<base64> form: for the secret routes' answers only.
func (s Secret) Reveal() string { return secretPrefix + base64.StdEncoding.EncodeToString(s.key) }

// Key returns a copy of the secret's bytes, the HMAC key of webhook-signature.
func (s Secret) Key() []byte { return append([]byte(nil), s.key...) }

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// Equal reports whether s and o are the same secret.
func (s Secret) Equal(o Secret) bool { return string(s.key) == string(o.key) }

// String hides the secret.
func (s Secret) String() string { return redacted }

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return redacted }

// Format hides the secret from every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON refuses: a secret goes into an answer only through Reveal, on purpose.
func (s Secret) MarshalJSON() ([]byte, error) {
	return nil, errors.New("an endpoint secret is never marshalled; use Reveal on the secret routes")
}

// Sealed is a secret encrypted for one endpoint: a version prefix ("v1:"), then the base64url
// of the GCM nonce and ciphertext. The version names the key derivation, so the key can be
// rotated later with old values still readable.
type Sealed string

// sealVersion is the version of the seals Keyring writes.
const sealVersion = "v1:"

// Keyring encrypts and decrypts endpoint secrets with AES-256-GCM under a key derived (HKDF,
// SHA-256) from ENDPOINT_SECRETS_KEY. Each ciphertext is bound to its endpoint's id (GCM's
// additional data), so ciphertexts cannot be swapped between items. It is safe for concurrent
// use, and never shows its key.
type Keyring struct {
	aead cipher.AEAD
}

// NewKeyring derives the encryption key from master, which must have at least MinKeyChars
// characters. Its error never repeats master.
func NewKeyring(master string) (*Keyring, error) {
	if len(master) < MinKeyChars {
		return nil, fmt.Errorf("%w: %d characters, at least %d are needed", ErrKeyTooShort, len(master), MinKeyChars)
	}
	key, err := hkdf.Key(sha256.New, []byte(master), nil, "pushfn endpoint secrets v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive the endpoint secrets key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("endpoint secrets cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("endpoint secrets cipher: %w", err)
	}
	return &Keyring{aead: aead}, nil
}

// String hides the key.
func (k *Keyring) String() string { return "endpoint.Keyring" }

// GoString hides the key from %#v.
func (k *Keyring) GoString() string { return "endpoint.Keyring" }

// Format hides the key from every fmt verb.
func (k *Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "endpoint.Keyring") }

// additionalData binds a ciphertext to its endpoint.
func additionalData(endpointID string) []byte {
	return []byte("pushfn/endpoint-secret\x00" + endpointID)
}

// Seal encrypts s for the endpoint with id endpointID, under a fresh random nonce.
func (k *Keyring) Seal(endpointID string, s Secret) Sealed {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(s.key)+k.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, s.key, additionalData(endpointID))
	return Sealed(sealVersion + base64.RawURLEncoding.EncodeToString(out))
}

// Open decrypts a secret sealed for the endpoint with id endpointID, or returns an error
// wrapping ErrSealed.
func (k *Keyring) Open(endpointID string, v Sealed) (Secret, error) {
	raw, ok := strings.CutPrefix(string(v), sealVersion)
	if !ok {
		return Secret{}, fmt.Errorf("open the secret of %s: %w: unknown version", endpointID, ErrSealed)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < k.aead.NonceSize() {
		return Secret{}, fmt.Errorf("open the secret of %s: %w: not base64url of a nonce and ciphertext", endpointID, ErrSealed)
	}
	n := k.aead.NonceSize()
	key, err := k.aead.Open(nil, b[:n], b[n:], additionalData(endpointID))
	if err != nil {
		return Secret{}, fmt.Errorf("open the secret of %s: %w: wrong key, endpoint or damaged value", endpointID, ErrSealed)
	}
	return Secret{key: key}, nil
}

// CurrentSecret decrypts r's current secret.
func (r Record) CurrentSecret(k *Keyring) (Secret, error) { return k.Open(r.ID, r.Secret) }

// ActiveSecrets returns the secrets that sign r's deliveries at now: the current one first,
// then each rotated-out one whose overlap has not ended, newest first.
func (r Record) ActiveSecrets(k *Keyring, now time.Time) ([]Secret, error) {
	cur, err := r.CurrentSecret(k)
	if err != nil {
		return nil, err
	}
	out := []Secret{cur}
	for _, p := range r.Previous {
		if !now.Before(p.Until) {
			continue
		}
		s, err := k.Open(r.ID, p.Sealed)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Rotate makes next r's current secret; the secret it replaces keeps signing for
// RotationOverlap after now. Rotated-out secrets whose overlap has ended are dropped, and at
// most MaxPreviousSecrets are kept (the newest).
func (r *Record) Rotate(k *Keyring, next Secret, now time.Time) {
	kept := []PreviousSecret{{Sealed: r.Secret, Until: now.Add(RotationOverlap)}}
	for _, p := range r.Previous {
		if now.Before(p.Until) && len(kept) < MaxPreviousSecrets {
			kept = append(kept, p)
		}
	}
	r.Previous = kept
	r.Secret = k.Seal(r.ID, next)
}
