// Package receiver is a push target for trying pushfn out, for end-to-end tests and for the
// benchmark: it takes every push, checks its signature when it has the secret, answers with a
// chosen status after a chosen delay, and counts what it got.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package receiver

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushfn/pushfn/shared/push"
)

// StatsPath answers GET with the Counts as JSON, so a test or a script can read them.
const StatsPath = "/_stats"

// Push describes one push received.
type Push struct {
	ID          string // webhook-id
	Size        int    // body bytes
	SignatureOK bool   // meaningful when the receiver has keys
	Signed      bool   // the receiver checked a signature
	Err         error  // why the signature was refused
}

// Counts is what a Receiver got.
type Counts struct {
	Received     int64 `json:"received"`
	Bytes        int64 `json:"bytes"`
	SignatureOK  int64 `json:"signature_ok"`
	SignatureBad int64 `json:"signature_bad"`
	Distinct     int64 `json:"distinct_ids"`
}

// Receiver is an http.Handler taking pushes. Set its fields before serving; it is safe for
// concurrent use.
type Receiver struct {
	// Status answers every push; 0 means 200.
	Status int
	// Delay is waited before answering.
	Delay time.Duration
	// FailFirst answers the first FailFirst pushes of each id with FailStatus (503 if 0), to
	// show retries.
	FailFirst  int
	FailStatus int
	// Keys verify signatures; none means no check.
	Keys [][]byte
	// OnPush, if set, is called for every push, from the serving goroutine.
	OnPush func(Push)

	received, bytes, sigOK, sigBad atomic.Int64

	mu  sync.Mutex
	ids map[string]int // pushes per id; kept only when FailFirst is set or distinct ids are asked for
}

// Counts returns what the receiver has got so far.
func (rc *Receiver) Counts() Counts {
	rc.mu.Lock()
	distinct := int64(len(rc.ids))
	rc.mu.Unlock()
	return Counts{Received: rc.received.Load(), Bytes: rc.bytes.Load(), SignatureOK: rc.sigOK.Load(), SignatureBad: rc.sigBad.Load(), Distinct: distinct}
}

// bufPool holds body buffers, so a busy receiver does not allocate per push.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// ServeHTTP takes one push.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == StatsPath {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rc.Counts())
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "pushes are POSTed", http.StatusMethodNotAllowed)
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	body, err := readAll(r.Body, (*bp)[:0])
	*bp = body
	if err != nil {
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(push.HeaderID)
	p := Push{ID: id, Size: len(body)}
	rc.received.Add(1)
	rc.bytes.Add(int64(len(body)))
	if len(rc.Keys) > 0 {
		p.Signed = true
		p.Err = push.Verifier{Keys: rc.Keys}.Verify(id, r.Header.Get(push.HeaderTimestamp), r.Header.Get(push.HeaderSignature), body, time.Now())
		p.SignatureOK = p.Err == nil
		if p.SignatureOK {
			rc.sigOK.Add(1)
		} else {
			rc.sigBad.Add(1)
		}
	}
	status := rc.Status
	if status == 0 {
		status = http.StatusOK
	}
	if seen := rc.seen(id); rc.FailFirst > 0 && seen <= rc.FailFirst {
		status = rc.FailStatus
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
	}
	if rc.OnPush != nil {
		rc.OnPush(p)
	}
	if rc.Delay > 0 {
		t := time.NewTimer(rc.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	w.WriteHeader(status)
}

// seen counts a push of id and returns how many there have been, itself included.
func (rc *Receiver) seen(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.ids == nil {
		rc.ids = make(map[string]int)
	}
	rc.ids[id]++
	return rc.ids[id]
}

// maxBody bounds what one push may carry.
const maxBody = 8 << 20

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for len(b) <= maxBody {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, fmt.Errorf("body larger than %d bytes", maxBody)
}
