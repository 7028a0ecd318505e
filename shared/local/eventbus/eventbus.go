// Package eventbus is the EventBridge of local runs: a small PutEvents endpoint (AWS JSON 1.1,
// as the SDK's eventbridge client speaks it) that prints each event it receives as one log line
// and keeps the last ones in memory, so operational events can be seen and asserted on with no
// AWS account.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package eventbus

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Limits of PutEvents, as EventBridge sets them.
const (
	MaxEntries      = 10
	MaxRequestBytes = 256 * 1024
)

// DefaultKeep is how many events a Server keeps when its Keep is 0.
const DefaultKeep = 1000

// target is the X-Amz-Target of a PutEvents call.
const target = "AWSEvents.PutEvents"

// Event is one event the server accepted.
type Event struct {
	ID         string          `json:"id"`
	Bus        string          `json:"event_bus_name"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail_type"`
	Detail     json.RawMessage `json:"detail"`
	Resources  []string        `json:"resources,omitempty"`
	Time       time.Time       `json:"time"`     // the entry's, or when it was received
	Received   time.Time       `json:"received"` // when the server took it
}

// Server answers PutEvents. Its fields are set before it serves; it is safe for concurrent use.
type Server struct {
	Log  *slog.Logger // each event as one line ("operational event"); nil: none
	Keep int          // events kept for Events; 0 means DefaultKeep
	Now  func() time.Time

	mu     sync.Mutex
	events []Event // a ring of the last Keep, oldest at next once full
	next   int
	total  int
}

// entry is a PutEventsRequestEntry as the SDK encodes it.
type entry struct {
	Source       *string  `json:"Source"`
	DetailType   *string  `json:"DetailType"`
	Detail       *string  `json:"Detail"`
	EventBusName *string  `json:"EventBusName"`
	Resources    []string `json:"Resources"`
	Time         *float64 `json:"Time"` // epoch seconds
}

type resultEntry struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

// ServeHTTP answers a PutEvents call: 200 with FailedEntryCount and an EventId per entry
// accepted (an ErrorCode for an entry EventBridge would fail: no source, no detail type, or a
// detail that is not a JSON object), 400 ValidationException for a request that is not a
// PutEvents call of 1 to 10 entries.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, http.StatusMethodNotAllowed, "UnknownOperationException", "method: only POST is served")
		return
	}
	if got := r.Header.Get("X-Amz-Target"); got != target {
		fail(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("X-Amz-Target: %q is not %s, the one operation served", got, target))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "SerializationException", "body: "+err.Error())
		return
	}
	if len(body) > MaxRequestBytes {
		fail(w, http.StatusRequestEntityTooLarge, "ValidationException", fmt.Sprintf("body: above %d bytes", MaxRequestBytes))
		return
	}
	var in struct {
		Entries []entry `json:"Entries"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil || dec.More() {
		fail(w, http.StatusBadRequest, "SerializationException", fmt.Sprintf("body: not one JSON object of a PutEvents request: %v", err))
		return
	}
	if n := len(in.Entries); n < 1 || n > MaxEntries {
		fail(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("Entries: %d entries, want 1 to %d", n, MaxEntries))
		return
	}
	now := s.now()
	out := struct {
		FailedEntryCount int           `json:"FailedEntryCount"`
		Entries          []resultEntry `json:"Entries"`
	}{Entries: make([]resultEntry, len(in.Entries))}
	for i, e := range in.Entries {
		ev, code, msg := accept(e, now)
		if code != "" {
			out.FailedEntryCount++
			out.Entries[i] = resultEntry{ErrorCode: code, ErrorMessage: fmt.Sprintf("Entries[%d].%s", i, msg)}
			continue
		}
		s.keep(ev)
		out.Entries[i] = resultEntry{EventID: ev.ID}
		if s.Log != nil {
			s.Log.Info("operational event", "event_id", ev.ID, "event_bus_name", ev.Bus, "source", ev.Source,
				"detail_type", ev.DetailType, "detail", ev.Detail)
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// accept turns e into an Event, or says why EventBridge would fail it: an error code and the
// field.
func accept(e entry, now time.Time) (Event, string, string) {
	switch {
	case e.Source == nil || *e.Source == "":
		return Event{}, "InvalidArgument", "Source: required"
	case e.DetailType == nil || *e.DetailType == "":
		return Event{}, "InvalidArgument", "DetailType: required"
	case e.Detail == nil:
		return Event{}, "InvalidArgument", "Detail: required"
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(*e.Detail), &obj) != nil || obj == nil {
		return Event{}, "MalformedDetail", "Detail: not a JSON object"
	}
	ev := Event{ID: newID(), Bus: "default", Source: *e.Source, DetailType: *e.DetailType, Detail: json.RawMessage(*e.Detail),
		Resources: e.Resources, Time: now, Received: now}
	if e.EventBusName != nil && *e.EventBusName != "" {
		ev.Bus = *e.EventBusName
	}
	if e.Time != nil {
		sec := *e.Time
		ev.Time = time.Unix(0, int64(sec*float64(time.Second))).UTC()
	}
	return ev, "", ""
}

func (s *Server) keep(ev Event) {
	limit := s.Keep
	if limit <= 0 {
		limit = DefaultKeep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if len(s.events) < limit {
		s.events = append(s.events, ev)
		return
	}
	s.events[s.next] = ev
	s.next = (s.next + 1) % limit
}

// Events returns the events kept, oldest first: the last Keep the server accepted.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(s.events))
	out = append(out, s.events[s.next:]...)
	return append(out, s.events[:s.next]...)
}

// Total is how many events the server accepted, those no longer kept included.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now()
}

// fail answers an AWS JSON 1.1 error.
func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// newID returns an event id in EventBridge's form (a UUID).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
