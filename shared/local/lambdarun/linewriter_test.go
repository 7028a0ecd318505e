package lambdarun

import (
	"bytes"
	"strings"
	"testing"
)

// recorder keeps each Write it gets.
type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

// A process's output reaches the shared writer in whole lines, whatever the pieces it came in.
func TestLineWriterPassesWholeLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		pieces []string
		want   []string // the Writes the shared writer gets, flush included
	}{
		{"one line", []string{"a\n"}, []string{"a\n"}},
		{"split line", []string{`{"Deli`, `veries":2}` + "\n"}, []string{`{"Deliveries":2}` + "\n"}},
		{"two lines and a piece", []string{"a\nb\nc"}, []string{"a\nb\n", "c"}},
		{"piece then rest", []string{"a\nb", "c\n"}, []string{"a\n", "bc\n"}},
		{"no newline", []string{"abc"}, []string{"abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			lw := &lineWriter{w: rec}
			for _, p := range tc.pieces {
				if n, err := lw.Write([]byte(p)); n != len(p) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", p, n, err)
				}
			}
			lw.flush()
			if strings.Join(rec.writes, "|") != strings.Join(tc.want, "|") {
				t.Errorf("writes %q, want %q", rec.writes, tc.want)
			}
		})
	}
}

// A line longer than the buffer is passed on rather than held without bound.
func TestLineWriterBoundsItsBuffer(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	lw := &lineWriter{w: rec}
	long := bytes.Repeat([]byte("x"), maxLineBuffer+1)
	_, _ = lw.Write(long)
	if len(rec.writes) != 1 || len(rec.writes[0]) != len(long) || len(lw.buf) != 0 {
		t.Errorf("%d writes, %d bytes held: want the long piece passed on", len(rec.writes), len(lw.buf))
	}
}
