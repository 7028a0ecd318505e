package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// reopenTests are the conformance tests of kept copies (Outcome.Keep, Record.Copy) and of Reopen.
var reopenTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"KeepCopyRoundTrip", testKeepCopyRoundTrip},
	{"KeepCopyTooLarge", testKeepCopyTooLarge},
	{"KeepOnlyWhenEnded", testKeepOnlyWhenEnded},
	{"DeliveredRemovesCopy", testDeliveredRemovesCopy},
	{"Reopen", testReopen},
	{"ReopenRefused", testReopenRefused},
	{"ReopenMissing", testReopenMissing},
	{"ReopenAppliedTwice", testReopenAppliedTwice},
	{"ReopenHealsLostSend", testReopenHealsLostSend},
	{"ReopenHistoryCap", testReopenHistoryCap},
	{"ReopenUnclaimedDelivery", testReopenUnclaimedDelivery},
}

// copyOf is a queued copy of rec's message: an envelope around payload, as the api queues it.
func copyOf(rec message.Record, payload string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"target":{"url":"https://hooks.example.com/push"},"payload":%s,"fingerprint":%q}`,
		rec.ID, payload, rec.Fingerprint)
}

// randomPayload is a JSON string of n random bytes' hex (2n bytes), which compresses to about
// half: a payload that gzip cannot shrink away.
func randomPayload(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, 0, 2*n+2)
	b = append(b, '"')
	for range n {
		b = fmt.Appendf(b, "%02x", byte(r.Uint32()))
	}
	return string(append(b, '"'))
}

// failWith claims rec and finishes it failed with a 404 attempt at t, keeping keep.
func failWith(t *testing.T, s store.Store, rec message.Record, at time.Time, token string, keep []byte) message.Record {
	t.Helper()
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: token})
	return mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(time.Second), Status: message.Failed, Token: token, Keep: keep,
		Attempt: &message.Attempt{At: at, StatusCode: 404, DurationMS: 7}})
}

func mustReopen(t *testing.T, s store.Store, id string, r store.Reopen) message.Record {
	t.Helper()
	rec, err := s.Reopen(context.Background(), id, r)
	if err != nil {
		t.Fatalf("Reopen(%s, %s): %v", id, r.Token, err)
	}
	return rec
}

// testKeepCopyRoundTrip: a copy kept by a failed or expired write reads back byte for byte, from
// the write's answer and from Get, a 256 KiB random payload included.
func testKeepCopyRoundTrip(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name    string
		payload string
		status  message.Status
	}{
		{"small failed", `{"user_id":"1","message":"Hello <b>&amp;</b> \u00e9"}`, message.Failed},
		{"256 KiB random failed", randomPayload(1, 128<<10), message.Failed},
		{"expired", `[1, 2.50, "x"]`, message.Expired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := now()
			rec := mustCreate(t, s, newRecord(at))
			keep := copyOf(rec, tc.payload)
			var got message.Record
			if tc.status == message.Expired {
				got = mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Expired, Fingerprint: rec.Fingerprint, Keep: keep})
			} else {
				got = failWith(t, s, rec, at, "tok-a", keep)
			}
			want := bytes.Clone(keep)
			keep[0] = 'X' // the store must not keep the caller's slice
			if !bytes.Equal(got.Copy, want) {
				t.Errorf("Finish's record: copy of %d bytes, want the %d bytes kept", len(got.Copy), len(want))
			}
			if c := mustGet(t, s, rec.ID).Copy; !bytes.Equal(c, want) {
				t.Errorf("Get: copy of %d bytes, want the %d bytes kept", len(c), len(want))
			}
		})
	}
}

// testKeepCopyTooLarge: a copy over store.MaxKeptCopyBytes once compressed is not kept, and
// drops a copy kept before.
func testKeepCopyTooLarge(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	failWith(t, s, rec, at, "tok-a", copyOf(rec, `"small"`))
	mustReopen(t, s, rec.ID, store.Reopen{Now: at.Add(time.Minute), Token: "reopen-1"})
	// Random hex compresses to about half: 2 × 400,000 bytes of it is well over the bound.
	got := failWith(t, s, rec, at.Add(2*time.Minute), "tok-b", copyOf(rec, randomPayload(2, 400_000)))
	if got.Copy != nil || mustGet(t, s, rec.ID).Copy != nil {
		t.Fatalf("a copy over %d bytes compressed was kept (%d bytes)", store.MaxKeptCopyBytes, len(got.Copy))
	}
	_, err := s.Reopen(context.Background(), rec.ID, store.Reopen{Now: at.Add(3 * time.Minute), Token: "reopen-2"})
	wantConflict(t, err, store.ErrNoCopy)
}

// testKeepOnlyWhenEnded: Keep is stored only by a write that ends the record failed or expired.
func testKeepOnlyWhenEnded(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	got := mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Retrying, Token: "tok-a", Keep: copyOf(rec, "1"),
		Attempt: &message.Attempt{At: at, StatusCode: 503}})
	if got.Copy != nil || mustGet(t, s, rec.ID).Copy != nil {
		t.Fatal("a retrying write kept a copy")
	}
}

// testDeliveredRemovesCopy: a reopened record keeps its copy while it is delivered again, and the
// write that ends it delivered removes the copy.
func testDeliveredRemovesCopy(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	failWith(t, s, rec, at, "tok-a", copyOf(rec, `{"a":1}`))
	reopened := mustReopen(t, s, rec.ID, store.Reopen{Now: at.Add(time.Minute), Token: "reopen-1"})
	claimed := mustClaim(t, s, rec.ID, store.Claim{Now: at.Add(time.Minute), Lease: lease, Token: "tok-b", Fingerprint: rec.Fingerprint})
	if !bytes.Equal(claimed.Copy, reopened.Copy) || claimed.Copy == nil {
		t.Fatalf("claim of a reopened record: copy %q, want %q", claimed.Copy, reopened.Copy)
	}
	got := mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(time.Minute), Status: message.Delivered, Token: "tok-b",
		Attempt: &message.Attempt{At: at.Add(time.Minute), StatusCode: 200}})
	if got.Copy != nil || mustGet(t, s, rec.ID).Copy != nil {
		t.Fatal("a delivered record kept its copy")
	}
}

// testReopen: a failed record is reopened with its copy, no attempt, its last attempt in its
// history, and is then claimed as a new message (attempt 1), its fingerprint unchanged.
func testReopen(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	keep := copyOf(rec, `{"user_id":"1"}`)
	failed := failWith(t, s, rec, at, "tok-a", keep)
	then := at.Add(time.Hour)
	got := mustReopen(t, s, rec.ID, store.Reopen{Now: then, Token: "reopen-1"})
	want := failed
	want.Status = message.Accepted
	want.Attempts = 0
	want.History = []message.Attempt{*failed.LastAttempt}
	want.LastAttempt = nil
	want.FinishedBy = ""
	want.ReopenToken, want.ReopenedAt = "reopen-1", then
	want.UpdatedAt = then
	want.TTL = ttlAfter(then)
	equal(t, "Reopen", got, want)
	equal(t, "Get after Reopen", mustGet(t, s, rec.ID), want)

	claimed := mustClaim(t, s, rec.ID, store.Claim{Now: then, Lease: lease, Token: "tok-b", Fingerprint: rec.Fingerprint})
	if claimed.Attempts != 1 || claimed.Status != message.Delivering || len(claimed.History) != 1 {
		t.Fatalf("claim after Reopen: %s, %d attempts, history %d; want delivering, 1, 1", claimed.Status, claimed.Attempts, len(claimed.History))
	}
	// Failed again: reopened again, both last attempts in the history, oldest first.
	again := mustFinish(t, s, rec.ID, store.Outcome{Now: then, Status: message.Failed, Token: "tok-b", Keep: keep,
		Attempt: &message.Attempt{At: then, StatusCode: 410, DurationMS: 3}})
	second := mustReopen(t, s, rec.ID, store.Reopen{Now: then.Add(time.Hour), Token: "reopen-2"})
	if len(second.History) != 2 || second.History[0] != *failed.LastAttempt || second.History[1] != *again.LastAttempt {
		t.Fatalf("history after two reopens = %+v, want the 404 then the 410", second.History)
	}
}

// testReopenRefused: live and delivered records, and failed ones without a copy, are refused with
// the record as found.
func testReopenRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		make func(rec message.Record, at time.Time) message.Record
		want error
	}{
		{"accepted", func(rec message.Record, _ time.Time) message.Record { return rec }, store.ErrNotFinal},
		{"delivering", func(rec message.Record, at time.Time) message.Record {
			return mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
		}, store.ErrNotFinal},
		{"retrying", func(rec message.Record, at time.Time) message.Record {
			mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
			return mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Retrying, Token: "tok-a", Attempt: &message.Attempt{At: at, StatusCode: 503}})
		}, store.ErrNotFinal},
		{"delivered", func(rec message.Record, at time.Time) message.Record {
			mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
			return mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Delivered, Token: "tok-a", Attempt: &message.Attempt{At: at, StatusCode: 200}})
		}, store.ErrDelivered},
		{"failed without a copy", func(rec message.Record, at time.Time) message.Record {
			return failWith(t, s, rec, at, "tok-a", nil)
		}, store.ErrNoCopy},
		{"expired without a copy", func(rec message.Record, at time.Time) message.Record {
			return mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Expired})
		}, store.ErrNoCopy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := now()
			found := tc.make(mustCreate(t, s, newRecord(at)), at)
			_, err := s.Reopen(ctx, found.ID, store.Reopen{Now: at.Add(time.Minute), Token: "reopen-1"})
			equal(t, "ConflictError.Record", wantConflict(t, err, tc.want), found)
			equal(t, "Get after the refusal", mustGet(t, s, found.ID), found)
		})
	}
}

func testReopenMissing(t *testing.T, s store.Store) {
	_, err := s.Reopen(context.Background(), message.NewID(now()), store.Reopen{Now: now(), Token: "reopen-1"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Reopen of a missing record: %v, want ErrNotFound", err)
	}
}

// testReopenAppliedTwice: the same reopen made again (its answer lost) reads as done and changes
// nothing.
func testReopenAppliedTwice(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	failWith(t, s, rec, at, "tok-a", copyOf(rec, "2"))
	r := store.Reopen{Now: at.Add(time.Minute), Token: "reopen-1"}
	first := mustReopen(t, s, rec.ID, r)
	again := mustReopen(t, s, rec.ID, store.Reopen{Now: at.Add(2 * time.Minute), Token: r.Token})
	equal(t, "Reopen again", again, first)
	equal(t, "Get after Reopen again", mustGet(t, s, rec.ID), first)
}

// testReopenHealsLostSend: a record reopened by another call (whose queue send may have been
// lost) and not claimed since is returned as it is, with its copy, so that it is queued again;
// once claimed, it is live.
func testReopenHealsLostSend(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	failWith(t, s, rec, at, "tok-a", copyOf(rec, "3"))
	first := mustReopen(t, s, rec.ID, store.Reopen{Now: at.Add(time.Minute), Token: "reopen-1"})
	other := mustReopen(t, s, rec.ID, store.Reopen{Now: at.Add(2 * time.Minute), Token: "reopen-2"})
	equal(t, "Reopen by another call", other, first)
	if other.Copy == nil {
		t.Fatal("Reopen by another call returned no copy to queue")
	}
	claimed := mustClaim(t, s, rec.ID, store.Claim{Now: at.Add(3 * time.Minute), Lease: lease, Token: "tok-b"})
	_, err := s.Reopen(context.Background(), rec.ID, store.Reopen{Now: at.Add(3 * time.Minute), Token: "reopen-3"})
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrNotFinal), claimed)
}

// testReopenHistoryCap: the history keeps the last message.MaxHistory last attempts, oldest
// dropped first.
func testReopenHistoryCap(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	keep := copyOf(rec, "4")
	var last message.Record
	const rounds = message.MaxHistory + 3
	for i := range rounds {
		ti := at.Add(time.Duration(i) * time.Minute)
		tok := fmt.Sprintf("tok-%d", i)
		mustClaim(t, s, rec.ID, store.Claim{Now: ti, Lease: lease, Token: tok})
		mustFinish(t, s, rec.ID, store.Outcome{Now: ti, Status: message.Failed, Token: tok, Keep: keep,
			Attempt: &message.Attempt{At: ti, StatusCode: 400 + i}})
		last = mustReopen(t, s, rec.ID, store.Reopen{Now: ti.Add(time.Second), Token: fmt.Sprintf("reopen-%d", i)})
	}
	if len(last.History) != message.MaxHistory {
		t.Fatalf("history of %d attempts after %d reopens, want %d", len(last.History), rounds, message.MaxHistory)
	}
	for i, a := range last.History {
		if want := 400 + rounds - message.MaxHistory + i; a.StatusCode != want {
			t.Errorf("history[%d] = status %d, want %d", i, a.StatusCode, want)
		}
	}
	equal(t, "Get", mustGet(t, s, rec.ID), last)
}

// testReopenUnclaimedDelivery: a fan-out's delivery that ended before any claim (its endpoint
// disabled), made by that write, keeps its copy and is reopened.
func testReopenUnclaimedDelivery(t *testing.T, s store.Store) {
	at := now()
	msgID := message.NewID(at)
	id := message.DeliveryID(msgID, "ep_x")
	n := &message.Record{MessageID: msgID, EndpointID: "ep_x", Fingerprint: "sha256:0f", TargetHost: "h.example", CreatedAt: at}
	keep := []byte(`{"id":"` + id + `","payload":{}}`)
	ended := mustFinish(t, s, id, store.Outcome{Now: at, Status: message.Failed, Fingerprint: "sha256:0f", New: n, Keep: keep,
		Attempt: &message.Attempt{At: at, Error: message.ReasonEndpointDisabled}})
	if !bytes.Equal(ended.Copy, keep) {
		t.Fatalf("copy = %q, want %q", ended.Copy, keep)
	}
	got := mustReopen(t, s, id, store.Reopen{Now: at.Add(time.Minute), Token: "reopen-1"})
	if got.Status != message.Accepted || len(got.History) != 1 || got.History[0].Error != message.ReasonEndpointDisabled || !bytes.Equal(got.Copy, keep) {
		t.Fatalf("reopened delivery = %s, history %+v, copy %q", got.Status, got.History, got.Copy)
	}
}

// testDeliveriesCarryCopy: both listings return a failed delivery's kept copy, decompressed, and
// none for a delivered one.
func testDeliveriesCarryCopy(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	at := now()
	msgID := message.NewID(at)
	ep := message.NewPrefixedID(message.EndpointIDPrefix, at)
	keep := []byte(`{"id":"x","payload":` + randomPayload(3, 1000) + `}`)
	eps := []string{ep, message.NewPrefixedID(message.EndpointIDPrefix, at.Add(time.Millisecond))}
	for i, status := range []message.Status{message.Failed, message.Delivered} {
		n := message.Record{MessageID: msgID, EndpointID: eps[i], Fingerprint: "sha256:fan", CreatedAt: at}
		id := message.DeliveryID(msgID, eps[i])
		mustClaim(t, s, id, store.Claim{Now: at, Lease: lease, Token: "t", Fingerprint: n.Fingerprint, New: &n})
		mustFinish(t, s, id, store.Outcome{Now: at, Status: status, Token: "t", Keep: keep, Attempt: &message.Attempt{At: at, StatusCode: 404}})
	}
	check := func(what string, recs []message.Record) {
		t.Helper()
		if len(recs) == 0 {
			t.Fatalf("%s listed nothing", what)
		}
		for _, r := range recs {
			switch {
			case r.Status == message.Failed && !bytes.Equal(r.Copy, keep):
				t.Errorf("%s: failed delivery %s with copy %q, want the copy kept", what, r.ID, r.Copy)
			case r.Status == message.Delivered && r.Copy != nil:
				t.Errorf("%s: delivered delivery %s with a copy", what, r.ID)
			}
		}
	}
	page, err := s.ListMessageDeliveries(ctx, store.MessageDeliveryQuery{MessageID: msgID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 {
		t.Fatalf("ListMessageDeliveries listed %d, want 2", len(page.Records))
	}
	check("ListMessageDeliveries", page.Records)
	page, err = s.ListDeliveries(ctx, store.DeliveryQuery{EndpointID: ep, Status: message.Failed})
	if err != nil {
		t.Fatal(err)
	}
	check("ListDeliveries", page.Records)
}
