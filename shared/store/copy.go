package store

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/pushfn/pushfn/shared/message"
)

// MaxKeptCopyBytes bounds a kept copy once compressed: DynamoDB's items are at most 400 KB, and
// the rest of the record must fit beside it. A copy over it is not kept. The default
// MAX_PAYLOAD_BYTES (262,144) keeps every copy under it, even one that does not compress.
const MaxKeptCopyBytes = 350_000

// maxCopyBytes bounds a kept copy once decompressed, so that a corrupt item cannot expand without
// end in a reader's memory: the largest SQS message body.
const maxCopyBytes = 1 << 20

// compressCopy is b compressed as it is kept, or false when it is too large to keep.
func compressCopy(b []byte) ([]byte, bool) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	// Writes to a bytes.Buffer do not fail.
	_, _ = zw.Write(b)
	_ = zw.Close()
	if buf.Len() > MaxKeptCopyBytes {
		return nil, false
	}
	return buf.Bytes(), true
}

// decompressCopy is the copy a kept, compressed one holds; a copy that does not decompress wraps
// ErrMalformed.
func decompressCopy(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("%w: kept copy: %w", ErrMalformed, err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, maxCopyBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: kept copy: %w", ErrMalformed, err)
	case len(b) > maxCopyBytes:
		return nil, fmt.Errorf("%w: kept copy: over %d bytes", ErrMalformed, maxCopyBytes)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// keepsCopy reports whether o writes the copy a record keeps: it ends the record failed or
// expired with a copy to keep. The copy is then o.Keep compressed, or none when that is too large.
func keepsCopy(o Outcome) bool {
	return o.Keep != nil && (o.Status == message.Failed || o.Status == message.Expired)
}
