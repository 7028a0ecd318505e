package push

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Standard Webhooks headers every push carries: the message id, the attempt's Unix time and,
// when keys are set, the signatures.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// secretPrefix starts a secret in the Standard Webhooks form whsec_<base64>.
const secretPrefix = "whsec_"

// ParseSecret decodes a secret of the form whsec_<base64> into its key bytes. The error never
// repeats the secret.
func ParseSecret(s string) ([]byte, error) {
	raw, ok := strings.CutPrefix(strings.TrimSpace(s), secretPrefix)
	if !ok {
		return nil, errors.New("signing secret does not start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, errors.New("signing secret is not whsec_ followed by base64")
	}
	return key, nil
}

// Sign returns the value of the webhook-signature header for a message: "v1,<signature>" for
// each key, space-separated, where the signature is the base64 HMAC-SHA256 of "id.timestamp.body".
// It returns "" when keys is empty.
func Sign(keys [][]byte, id string, timestamp int64, body []byte) string {
	return newSigner(keys).sign(id, timestamp, body)
}

// signer signs with a set of keys, reusing keyed HMAC states: it is on every push's path.
type signer struct {
	macs []sync.Pool // of hash.Hash, one pool per key
}

func newSigner(keys [][]byte) *signer {
	s := &signer{macs: make([]sync.Pool, len(keys))}
	for i, key := range keys {
		s.macs[i].New = func() any { return hmac.New(sha256.New, key) }
	}
	return s
}

func (s *signer) sign(id string, timestamp int64, body []byte) string {
	if len(s.macs) == 0 {
		return ""
	}
	// One buffer holds the signed prefix "id.timestamp." and then the header value.
	buf := make([]byte, 0, len(id)+22+len(s.macs)*48)
	buf = append(buf, id...)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, timestamp, 10)
	buf = append(buf, '.')
	prefix := len(buf)
	var sum [sha256.Size]byte
	for i := range s.macs {
		mac := s.macs[i].Get().(hash.Hash)
		mac.Reset()
		mac.Write(buf[:prefix])
		mac.Write(body)
		mac.Sum(sum[:0])
		s.macs[i].Put(mac)
		if i > 0 {
			buf = append(buf, ' ')
		}
		buf = append(buf, "v1,"...)
		buf = base64.StdEncoding.AppendEncode(buf, sum[:])
	}
	return string(buf[prefix:])
}

// Errors Verify reports. Test them with errors.Is.
var (
	// ErrNoSignature: a signature header or the id or timestamp it covers is missing.
	ErrNoSignature = errors.New("webhook signature headers missing")
	// ErrBadSignature: no signature in the header matches any key.
	ErrBadSignature = errors.New("webhook signature does not match")
	// ErrStale: the timestamp is outside the tolerance around now (a replay or a clock problem).
	ErrStale = errors.New("webhook timestamp outside tolerance")
)

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's clock, as the
// Standard Webhooks reference libraries allow.
const DefaultTolerance = 5 * time.Minute

// Verifier checks the Standard Webhooks signature of a received push.
type Verifier struct {
	Keys      [][]byte      // any of them may have signed (rotation)
	Tolerance time.Duration // zero means DefaultTolerance
}

// Verify checks that one of the space-separated v1 signatures in signature was made with one of
// v.Keys over id, timestamp and body, and that timestamp (Unix seconds) is within the tolerance
// of now.
func (v Verifier) Verify(id, timestamp, signature string, body []byte, now time.Time) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrNoSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", timestamp, ErrBadSignature)
	}
	tol := v.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tol || d < -tol {
		return fmt.Errorf("webhook-timestamp %d is %s from now: %w", ts, d.Round(time.Second), ErrStale)
	}
	want := make([][]byte, len(v.Keys))
	for i, key := range v.Keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + timestamp + "."))
		mac.Write(body)
		want[i] = mac.Sum(nil)
	}
	for _, part := range strings.Fields(signature) {
		version, sig, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		for _, w := range want {
			if hmac.Equal(got, w) {
				return nil
			}
		}
	}
	return ErrBadSignature
}
