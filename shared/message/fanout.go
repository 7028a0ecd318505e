package message

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// Limits of the names a fan-out selects endpoints by.
const (
	MaxTenantIDChars  = 128
	MaxEventTypeBytes = 128
)

// CheckTenantID returns why id is not a valid tenant id (1 to 128 printable ASCII characters,
// space to ~), or "".
func CheckTenantID(id string) string {
	if id == "" || len(id) > MaxTenantIDChars {
		return fmt.Sprintf("must be 1 to %d characters; got %d", MaxTenantIDChars, len(id))
	}
	if !Printable(id, 0x20) {
		return "must be printable ASCII (space to ~)"
	}
	return ""
}

// CheckEventType returns why name is not a valid event type (1 to 128 printable ASCII
// characters without spaces or *, such as "order.shipped"), or "".
func CheckEventType(name string) string {
	if name == "" || len(name) > MaxEventTypeBytes {
		return fmt.Sprintf("must be 1 to %d characters; got %d", MaxEventTypeBytes, len(name))
	}
	if !Printable(name, 0x21) {
		return "must be printable ASCII without spaces"
	}
	if strings.Contains(name, "*") {
		return `must not contain * (only a subscription's trailing ".*" is a wildcard)`
	}
	return ""
}

// Printable reports whether every byte of s is from low to ~.
func Printable(s string, low byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < low || s[i] > '~' {
			return false
		}
	}
	return true
}

// DeliveryIDPrefix starts the id of every delivery of a fan-out: the record of one
// (message, endpoint) pair.
const DeliveryIDPrefix = "dlv_"

// DeliveryID returns the id of the delivery of message messageID to endpoint endpointID: always
// the same for the same pair, so an expansion that runs again after a crash names the deliveries
// it made before, and never makes a second one.
func DeliveryID(messageID, endpointID string) string {
	sum := sha256.Sum256([]byte("pushfn/delivery\x00" + messageID + "\x00" + endpointID))
	return DeliveryIDPrefix + idEncoding.EncodeToString(sum[:idBytes])
}

// ValidDeliveryID reports whether id has the shape of a delivery id.
func ValidDeliveryID(id string) bool { return ValidPrefixedID(DeliveryIDPrefix, id) }

// ValidRecordID reports whether id names a record: a message's or a delivery's.
func ValidRecordID(id string) bool { return ValidID(id) || ValidDeliveryID(id) }

// RecoveryIDPrefix starts the id of every recovery: a window of an endpoint's failed deliveries
// sent again.
const RecoveryIDPrefix = "rcv_"

// ValidRecoveryID reports whether id has the shape of a recovery id.
func ValidRecoveryID(id string) bool { return ValidPrefixedID(RecoveryIDPrefix, id) }
