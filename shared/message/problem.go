package message

import (
	"slices"
	"strconv"
	"strings"
)

// Limits of the HTTP API, and the body sizes that follow from them.
const (
	MaxURLBytes            = 2048
	MaxHeaders             = 20
	MaxHeaderNameBytes     = 256
	MaxHeaderValueBytes    = 8192
	MaxIdempotencyKeyBytes = 255
	MaxDelaySeconds        = 900 // SQS's own limit
	MaxBatchMessages       = 500
	DefaultMaxPayloadBytes = 262_144
	// MaxDepth is how deeply arrays and objects may nest in a body.
	MaxDepth = 256
	// BodyOverheadBytes is the room a single-message body may take beyond its payload: target,
	// headers, key and the rest.
	BodyOverheadBytes = 64 << 10
	// MaxBatchBodyBytes bounds a batch body: Lambda refuses larger invocations anyway.
	MaxBatchBodyBytes = 6 << 20
)

// Problem is one reason a body was refused.
type Problem struct {
	Index  int    // position in a batch, or -1 for a single message or the body as a whole
	Field  string // path inside the message ("target.url"); empty for the body as a whole
	Reason string // what is wrong, phrased so a person can fix it
}

// Path is the problem's full field path: "messages[3].target.url" in a batch, "target.url" for
// a single message, "body" for the body as a whole.
func (p Problem) Path() string {
	var b strings.Builder
	if p.Index >= 0 {
		b.WriteString("messages[")
		b.WriteString(strconv.Itoa(p.Index))
		b.WriteString("]")
		if p.Field != "" {
			b.WriteString(".")
		}
	}
	b.WriteString(p.Field)
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// String returns "path: reason".
func (p Problem) String() string { return p.Path() + ": " + p.Reason }

// InvalidError reports every problem found in a body. Malformed is set when the body is not
// UTF-8 JSON at all (as opposed to JSON of the wrong shape or with wrong values).
type InvalidError struct {
	Malformed bool
	Problems  []Problem
}

// Error lists the problems.
func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	if e.Malformed {
		return "malformed JSON: " + strings.Join(parts, "; ")
	}
	return "invalid message: " + strings.Join(parts, "; ")
}

func malformed(reason string) *InvalidError {
	return &InvalidError{Malformed: true, Problems: []Problem{{Index: -1, Reason: reason}}}
}

// sortProblems orders problems by message, then field, so answers are stable.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return strings.Compare(a.Field, b.Field)
	})
}
