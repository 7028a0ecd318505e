package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrSlotArgs: a slot reservation was asked with an argument out of range (the error names it).
var ErrSlotArgs = errors.New("invalid slot reservation")

// Slots is the shared state of per-endpoint rate limits: per endpoint, the next send slot not yet
// handed out, in a numbering made at one rate r, where slot n belongs to the calendar second n/r
// (Unix seconds). Containers reserve slots in blocks, so the state costs one write per block.
//
// A reservation at rate r whose earliest usable slot is nowSlot returns the first of k
// consecutive slots no other reservation has had, and none before nowSlot. When the numbering
// was made at another rate, the new one starts at the first second the old one left unreserved,
// though at most 2 seconds after nowSlot's: old slots further ahead are held only by copies
// waiting in the queue, which take new slots when they arrive at the new rate. So every
// calendar second holds slots of one numbering only.
//
// A reservation whose answer was lost and which the SDK retried may apply twice: the first k
// slots are then never handed out, which wastes them and never lets a second exceed its rate.
type Slots interface {
	ReserveSlots(ctx context.Context, endpointID string, rate int, nowSlot int64, k int) (first int64, err error)
}

// maxRateChangeLead bounds, in seconds after nowSlot's, where a numbering made at a new rate
// starts.
const maxRateChangeLead = 2

// slotsKey is the id of the item holding an endpoint's slot counter.
func slotsKey(endpointID string) string { return "rl#" + endpointID }

// checkSlotArgs says which argument of a reservation is out of range, if one is.
func checkSlotArgs(endpointID string, rate int, nowSlot int64, k int) error {
	switch {
	case endpointID == "":
		return fmt.Errorf("%w: endpoint id is empty", ErrSlotArgs)
	case rate < 1:
		return fmt.Errorf("%w: rate is %d, must be at least 1", ErrSlotArgs, rate)
	case nowSlot < 0:
		return fmt.Errorf("%w: now slot is %d, must not be negative", ErrSlotArgs, nowSlot)
	case k < 1:
		return fmt.Errorf("%w: block of %d slots, must be at least 1", ErrSlotArgs, k)
	}
	return nil
}

// restart is where a numbering at rate starts when the stored one (next, at oldRate; oldRate 0
// when there is none) cannot be continued: its next slot is in the past, or it was made at
// another rate.
func restart(next int64, oldRate, rate int, nowSlot int64) int64 {
	if oldRate <= 0 || oldRate == rate {
		return max(next, nowSlot)
	}
	nowSec := nowSlot / int64(rate)
	free := (next + int64(oldRate) - 1) / int64(oldRate) // the first second with no old slot
	free = min(free, nowSec+maxRateChangeLead)
	return max(nowSlot, free*int64(rate))
}
