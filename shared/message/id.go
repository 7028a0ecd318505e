package message

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// idPrefix starts every message id, so an id is recognisable in logs and at a receiver.
const idPrefix = "msg_"

// idEncoding is lowercase Crockford-like base32 without padding; its alphabet sorts in byte
// order, so time-ordered ids sort by time as strings.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// idBytes is the length of an id's binary form: 26 characters once encoded.
const idBytes = 16

// IDForKey returns the id of the message with idempotency key key: always the same id for the
// same key, so a retried request maps to the item it created the first time.
func IDForKey(key string) string {
	sum := sha256.Sum256([]byte("pushfn/idempotency-key\x00" + key))
	return idPrefix + idEncoding.EncodeToString(sum[:idBytes])
}

// NewID returns a random message id whose first 48 bits are now in milliseconds, so ids sort by
// creation time.
func NewID(now time.Time) string { return NewPrefixedID(idPrefix, now) }

// ValidID reports whether id has the shape of a message id pushfn issues, so ids that cannot
// exist are refused without a lookup.
func ValidID(id string) bool { return ValidPrefixedID(idPrefix, id) }

// NewPrefixedID returns prefix followed by 26 characters of the id scheme messages use: 48 bits
// of now in milliseconds, then 80 random bits, in a base32 whose alphabet sorts in byte order,
// so the ids of one prefix sort by creation time. Other resources (endpoints) use it with their
// own prefix.
func NewPrefixedID(prefix string, now time.Time) string {
	var b [idBytes]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+).
	return prefix + idEncoding.EncodeToString(b[:])
}

// ValidPrefixedID reports whether id is prefix followed by an id of the scheme NewPrefixedID
// issues.
func ValidPrefixedID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != idEncoding.EncodedLen(idBytes) {
		return false
	}
	_, err := idEncoding.DecodeString(rest)
	return err == nil
}
