// Package status is the live status page of a local run: it reads the metrics documents the
// functions write to their output, counts the table's records by state and lists the
// operational events the local EventBridge endpoint received, and serves them as JSON and as a
// page of charts that needs no network.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package status

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/pushfn/pushfn/shared/local/eventbus"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
)

// Outcomes are the outcomes of a delivery a document counts, in the order the page shows them.
var Outcomes = []string{string(message.Delivered), string(message.Retrying), string(message.Failed), string(message.Expired)}

// Figures the Board keeps.
const (
	// RateWindow is the recent window the deliveries per second are averaged over.
	RateWindow = 10 * time.Second
	// SeriesLength is how far back the per-second series of deliveries goes.
	SeriesLength = 60 * time.Second
	// RecentEvents is how many of the last operational events a Snapshot lists.
	RecentEvents = 20
	// MaxRows is how many target hosts, or endpoints, a Snapshot lists at most: those with the
	// most deliveries.
	MaxRows = 50
	// DefaultTableEvery is the least time between two counts of the table when TableEvery is 0.
	DefaultTableEvery = 2 * time.Second
	// maxLine is the longest line a tap reads; a longer one is passed through and skipped.
	maxLine = 1 << 20
)

// EventSource is what the Board reads of the local EventBridge endpoint; *eventbus.Server has it.
type EventSource interface {
	Events() []eventbus.Event
	Total() int
}

var _ EventSource = (*eventbus.Server)(nil)

// Board keeps a local run's figures. Set its fields before use; its methods are safe for
// concurrent use. A nil Table or Events leaves their figures out.
type Board struct {
	Table  *Table
	Events EventSource
	// TableEvery is the least time between two counts of the table: a Snapshot asked for sooner
	// shows the last count. 0 means DefaultTableEvery.
	TableEvery time.Duration
	Now        func() time.Time

	mu         sync.Mutex
	documents  int
	unreadable int // lines meant as documents that could not be read
	accepted   float64
	replayed   float64
	refused    map[string]float64 // by code
	deliveries map[string]float64 // by outcome
	batches    float64            // invocations of the deliver function
	records    float64            // records in their batches
	notStarted float64
	conflicts  float64
	latency    histogram
	perSecond  map[int64]map[string]float64 // unix second: outcome: deliveries
	hosts, eps map[string]map[string]float64

	count     sync.Mutex // held while the table is counted
	counted   *States
	countedAt time.Time
	countErr  error
}

// histogram is the attempt latencies, merged from the documents' value/count arrays.
type histogram struct {
	buckets       map[float64]float64
	n, sum        float64
	minMS, maxMS  float64
	haveExtremums bool
}

// Tap returns a writer that writes everything to w and reads each complete line as a metrics
// document (lines that are none, such as logs, are skipped). Give each stream its own tap.
func (b *Board) Tap(w io.Writer) io.Writer {
	return &tap{board: b, w: w}
}

type tap struct {
	board   *Board
	w       io.Writer
	mu      sync.Mutex
	partial []byte
	skip    bool // the line in progress is longer than maxLine
}

func (t *tap) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := p
	for len(rest) > 0 {
		i := slices.Index(rest, '\n')
		if i < 0 {
			if len(t.partial)+len(rest) > maxLine {
				t.partial, t.skip = t.partial[:0], true
			} else if !t.skip {
				t.partial = append(t.partial, rest...)
			}
			break
		}
		if !t.skip {
			if len(t.partial) > 0 {
				t.board.Read(append(t.partial, rest[:i]...))
			} else {
				t.board.Read(rest[:i])
			}
		}
		t.partial, t.skip = t.partial[:0], false
		rest = rest[i+1:]
	}
	return n, err
}

// Read adds up one line, if it is a metrics document of pushfn.
func (b *Board) Read(line []byte) {
	d, err := parseDocument(line)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		if !errors.Is(err, errNotDocument) {
			b.unreadable++
		}
		return
	}
	b.documents++
	if b.refused == nil {
		b.refused, b.deliveries = map[string]float64{}, map[string]float64{}
		b.perSecond, b.hosts, b.eps = map[int64]map[string]float64{}, map[string]map[string]float64{}, map[string]map[string]float64{}
		b.latency.buckets = map[float64]float64{}
	}
	for name, v := range d.counts {
		switch name {
		case metrics.MessagesAccepted:
			b.accepted += v
		case metrics.MessagesReplayed:
			b.replayed += v
		case metrics.MessagesRefused:
			b.refused[d.code] += v
		case metrics.Deliveries:
			b.deliveries[d.outcome] += v
			sec := d.at.Unix()
			if b.perSecond[sec] == nil {
				b.perSecond[sec] = map[string]float64{}
			}
			b.perSecond[sec][d.outcome] += v
		case metrics.BatchSize:
			b.batches++
			b.records += v
		case metrics.RecordsNotStarted:
			b.notStarted += v
		case metrics.LeaseConflicts:
			b.conflicts += v
		}
	}
	if l := d.latency; l != nil && l.Count > 0 {
		h := &b.latency
		for i, v := range l.Values {
			h.buckets[v] += l.Counts[i]
		}
		if !h.haveExtremums {
			h.minMS, h.maxMS, h.haveExtremums = l.Min, l.Max, true
		}
		h.minMS, h.maxMS = min(h.minMS, l.Min), max(h.maxMS, l.Max)
		h.n += l.Count
		h.sum += l.Sum
	}
	add := func(into, from map[string]map[string]float64) {
		for key, outcomes := range from {
			if into[key] == nil {
				into[key] = map[string]float64{}
			}
			for o, v := range outcomes {
				into[key][o] += v
			}
		}
	}
	add(b.hosts, d.hosts)
	add(b.eps, d.eps)
	// The series needs only its last minute.
	for sec := range b.perSecond {
		if sec < d.at.Add(-2*SeriesLength).Unix() {
			delete(b.perSecond, sec)
		}
	}
}

// Snapshot is the page's figures at one time, as /status.json serves them.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Messages *Messages `json:"messages,omitempty"` // nil when the Board has no table
	Totals   Totals    `json:"totals"`
	Rate     Rate      `json:"rate"`
	Latency  Latency   `json:"latency"`
	// TargetHosts and Endpoints are the deliveries by outcome of each, most deliveries first.
	TargetHosts []Row   `json:"target_hosts"`
	Endpoints   []Row   `json:"endpoints"`
	Events      *Events `json:"events,omitempty"` // nil when the Board has no event source
}

// Messages are the table's records by state, as last counted.
type Messages struct {
	States
	CountedAt time.Time `json:"counted_at"`
	Error     string    `json:"error,omitempty"` // why the last count failed; the figures are the one before
}

// Totals are what the metrics documents count since the run started.
type Totals struct {
	Accepted          int64            `json:"accepted"`
	Replayed          int64            `json:"replayed"`
	Refused           int64            `json:"refused"`
	RefusedByCode     map[string]int64 `json:"refused_by_code"`
	Deliveries        map[string]int64 `json:"deliveries"` // by outcome
	Attempts          int64            `json:"attempts"`
	Batches           int64            `json:"batches"` // invocations of the deliver function
	Records           int64            `json:"records"` // records in their batches
	RecordsNotStarted int64            `json:"records_not_started"`
	LeaseConflicts    int64            `json:"lease_conflicts"`
	Documents         int              `json:"documents"`  // metrics documents read
	Unreadable        int              `json:"unreadable"` // lines meant as documents that could not be read
}

// Rate is the deliveries (every outcome) per second.
type Rate struct {
	WindowSeconds int     `json:"window_seconds"`
	PerSecond     float64 `json:"per_second"` // averaged over the window, to 0.1
	// Series holds one point a second for the last SeriesLength, oldest first.
	Series []Point `json:"series"`
}

// Point is the deliveries that ended one second, by outcome.
type Point struct {
	Time     int64            `json:"t"` // unix seconds
	Outcomes map[string]int64 `json:"outcomes"`
}

// Latency is the attempt latency in milliseconds. The percentiles are read from the documents'
// values, each rounded as the metrics round it (1 ms below 100 ms, within 5 % above).
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// Row is the deliveries of one target host or endpoint by outcome.
type Row struct {
	Key      string           `json:"key"`
	Outcomes map[string]int64 `json:"outcomes"`
	Total    int64            `json:"total"`
}

// Events are the operational events the local EventBridge endpoint received.
type Events struct {
	Total        int              `json:"total"`
	ByDetailType map[string]int64 `json:"by_detail_type"` // of the events kept
	Recent       []Event          `json:"recent"`         // newest first
}

// Event is one operational event as the page lists it.
type Event struct {
	Time       time.Time       `json:"time"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail_type"`
	Detail     json.RawMessage `json:"detail"`
}

// Snapshot returns the figures now, counting the table first when its last count is older than
// TableEvery.
func (b *Board) Snapshot(ctx context.Context) Snapshot {
	now := b.now()
	s := Snapshot{Time: now, Messages: b.messages(ctx, now), Events: b.events()}
	b.mu.Lock()
	defer b.mu.Unlock()
	s.Totals = Totals{
		Accepted: round(b.accepted), Replayed: round(b.replayed), RefusedByCode: map[string]int64{},
		Deliveries: outcomes(b.deliveries), Attempts: round(b.latency.n), Batches: round(b.batches),
		Records: round(b.records), RecordsNotStarted: round(b.notStarted), LeaseConflicts: round(b.conflicts),
		Documents: b.documents, Unreadable: b.unreadable,
	}
	for code, v := range b.refused {
		s.Totals.RefusedByCode[code] = round(v)
		s.Totals.Refused += round(v)
	}
	s.Rate = b.rate(now)
	s.Latency = b.latency.summary()
	s.TargetHosts, s.Endpoints = rows(b.hosts), rows(b.eps)
	return s
}

// messages returns the table's last count, counting again when it is older than TableEvery.
func (b *Board) messages(ctx context.Context, now time.Time) *Messages {
	if b.Table == nil {
		return nil
	}
	every := cmp.Or(b.TableEvery, DefaultTableEvery)
	b.count.Lock()
	defer b.count.Unlock()
	if b.counted == nil || now.Sub(b.countedAt) >= every {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := b.Table.Count(ctx)
		cancel()
		b.countErr = err
		if err == nil {
			b.counted, b.countedAt = &st, now
		}
	}
	m := &Messages{CountedAt: b.countedAt}
	if b.counted != nil {
		m.States = *b.counted
	}
	if b.countErr != nil {
		m.Error = b.countErr.Error()
	}
	return m
}

func (b *Board) events() *Events {
	if b.Events == nil {
		return nil
	}
	kept := b.Events.Events()
	e := &Events{Total: b.Events.Total(), ByDetailType: map[string]int64{}, Recent: []Event{}}
	for _, ev := range kept {
		e.ByDetailType[ev.DetailType]++
	}
	for i := len(kept) - 1; i >= 0 && len(e.Recent) < RecentEvents; i-- {
		ev := kept[i]
		e.Recent = append(e.Recent, Event{Time: ev.Time, Source: ev.Source, DetailType: ev.DetailType, Detail: ev.Detail})
	}
	return e
}

// rate returns the deliveries per second up to now; b.mu is held.
func (b *Board) rate(now time.Time) Rate {
	r := Rate{WindowSeconds: int(RateWindow / time.Second), Series: []Point{}}
	last := now.Unix()
	var inWindow float64
	for sec := last - int64(SeriesLength/time.Second) + 1; sec <= last; sec++ {
		p := Point{Time: sec, Outcomes: outcomes(b.perSecond[sec])}
		r.Series = append(r.Series, p)
		if sec > last-int64(r.WindowSeconds) {
			for _, v := range b.perSecond[sec] {
				inWindow += v
			}
		}
	}
	r.PerSecond = math.Round(inWindow/float64(r.WindowSeconds)*10) / 10
	return r
}

func (h *histogram) summary() Latency {
	if h.n == 0 {
		return Latency{}
	}
	values := slices.Sorted(maps.Keys(h.buckets))
	pct := func(p float64) float64 {
		rank := math.Ceil(p * h.n) // nearest rank
		var seen float64
		for _, v := range values {
			seen += h.buckets[v]
			if seen >= rank {
				return v
			}
		}
		return values[len(values)-1]
	}
	return Latency{
		Count: round(h.n), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99),
		Min: round1(h.minMS), Max: round1(h.maxMS), Mean: round1(h.sum / h.n),
	}
}

// outcomes returns the counts of every outcome, 0 included.
func outcomes(by map[string]float64) map[string]int64 {
	out := make(map[string]int64, len(Outcomes))
	for _, o := range Outcomes {
		out[o] = round(by[o])
	}
	for o, v := range by {
		out[o] = round(v)
	}
	return out
}

// rows returns the MaxRows keys with the most deliveries, most first.
func rows(by map[string]map[string]float64) []Row {
	out := make([]Row, 0, len(by))
	for key, o := range by {
		r := Row{Key: key, Outcomes: outcomes(o)}
		for _, v := range r.Outcomes {
			r.Total += v
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Row) int { return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Key, b.Key)) })
	if len(out) > MaxRows {
		out = out[:MaxRows]
	}
	return out
}

func round(v float64) int64 { return int64(math.Round(v)) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func (b *Board) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}
