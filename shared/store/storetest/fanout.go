package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// fanoutTests are the conformance tests of a fan-out's records: the message's expansion
// (Checkpoint, Finish with Fanout) and its deliveries, made by their first claim or finish.
var fanoutTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"FanoutRoundTrip", testFanoutRoundTrip},
	{"RecoveryRoundTrip", testRecoveryRoundTrip},
	{"ClaimMakesDelivery", testClaimMakesDelivery},
	{"ClaimNewStaleCopy", testClaimNewStaleCopy},
	{"FinishWithoutTokenMakesDelivery", testFinishWithoutTokenMakesDelivery},
	{"Checkpoint", testCheckpoint},
	{"CheckpointRelease", testCheckpointRelease},
	{"CheckpointMissing", testCheckpointMissing},
}

// newDelivery is the record a delivery copy of a fan-out message describes (Claim.New).
func newDelivery(at time.Time) (string, message.Record) {
	msgID := message.NewID(at)
	ep := message.NewPrefixedID(message.EndpointIDPrefix, at)
	expires := at.Add(time.Hour)
	return message.DeliveryID(msgID, ep), message.Record{
		MessageID: msgID, EndpointID: ep, Fingerprint: "sha256:fan", TargetHost: "hooks.example.com",
		CreatedAt: at.Add(-time.Second), ExpiresAt: &expires,
	}
}

func testFanoutRoundTrip(t *testing.T, s store.Store) {
	at := now()
	rec := newRecord(at)
	rec.TargetHost = ""
	rec.EventType, rec.TenantID = "order.shipped", "acme corp"
	rec.FanoutCursor, rec.FanoutDeliveries = "eyJhIjoiZXBfMDEifQ", 250
	want := mustCreate(t, s, rec)
	equal(t, "Get", mustGet(t, s, rec.ID), want)
}

func testRecoveryRoundTrip(t *testing.T, s store.Store) {
	at := now()
	rec := newRecord(at)
	rec.ID, rec.TargetHost = message.NewPrefixedID(message.RecoveryIDPrefix, at), ""
	rec.EndpointID = message.NewPrefixedID(message.EndpointIDPrefix, at)
	rec.RecoverSince, rec.RecoverUntil = at.Add(-time.Hour), at
	rec.FanoutCursor, rec.FanoutDeliveries, rec.Matched = "cursor", 40, 42
	want := mustCreate(t, s, rec)
	equal(t, "Get", mustGet(t, s, rec.ID), want)
}

func testClaimMakesDelivery(t *testing.T, s store.Store) {
	at := now()
	id, n := newDelivery(at)
	got := mustClaim(t, s, id, store.Claim{Now: at, Lease: lease, Token: "t1", Fingerprint: n.Fingerprint, New: &n})
	want := n
	want.ID, want.Status, want.Attempts = id, message.Delivering, 1
	want.LeaseToken, want.LeaseUntil, want.UpdatedAt, want.TTL = "t1", at.Add(lease), at, ttlAfter(at)
	equal(t, "Claim", got, want)
	equal(t, "Get", mustGet(t, s, id), want)

	// A second copy of the same delivery finds the first one's lease, then its end.
	_, err := s.Claim(context.Background(), id, store.Claim{Now: at, Lease: lease, Token: "t2", Fingerprint: n.Fingerprint, New: &n})
	wantConflict(t, err, store.ErrLeased)
	mustFinish(t, s, id, store.Outcome{Now: at, Status: message.Delivered, Token: "t1", Attempt: &message.Attempt{At: at, StatusCode: 200}})
	_, err = s.Claim(context.Background(), id, store.Claim{Now: at.Add(time.Second), Lease: lease, Token: "t3", Fingerprint: n.Fingerprint, New: &n})
	if rec := wantConflict(t, err, store.ErrFinal); rec.MessageID != n.MessageID || rec.Attempts != 1 {
		t.Errorf("the delivered record is %+v", rec)
	}
}

func testClaimNewStaleCopy(t *testing.T, s store.Store) {
	at := now()
	id, n := newDelivery(at)
	mustClaim(t, s, id, store.Claim{Now: at, Lease: time.Millisecond, Token: "t1", Fingerprint: n.Fingerprint, New: &n})
	other := n
	other.Fingerprint = "sha256:other"
	_, err := s.Claim(context.Background(), id, store.Claim{Now: at.Add(time.Second), Lease: lease, Token: "t2", Fingerprint: other.Fingerprint, New: &other})
	wantConflict(t, err, store.ErrStale)
}

func testFinishWithoutTokenMakesDelivery(t *testing.T, s store.Store) {
	at := now()
	id, n := newDelivery(at)
	a := &message.Attempt{At: at, Error: message.ReasonEndpointDisabled}
	got := mustFinish(t, s, id, store.Outcome{Now: at, Status: message.Failed, Fingerprint: n.Fingerprint, Attempt: a, New: &n})
	want := n
	want.ID, want.Status, want.LastAttempt, want.UpdatedAt, want.TTL = id, message.Failed, a, at, ttlAfter(at)
	equal(t, "Finish", got, want)
	_, err := s.Finish(context.Background(), id, store.Outcome{Now: at, Status: message.Failed, Fingerprint: n.Fingerprint, Attempt: a, New: &n})
	wantConflict(t, err, store.ErrFinal)
	// Without New, a missing record stays missing.
	other, _ := newDelivery(at)
	_, err = s.Finish(context.Background(), other, store.Outcome{Now: at, Status: message.Failed, Fingerprint: n.Fingerprint, Attempt: a})
	wantMissing(t, s, "Finish", other, err)
}

func testCheckpoint(t *testing.T, s store.Store) {
	at := now()
	rec := newRecord(at)
	rec.EventType = "order.shipped"
	mustCreate(t, s, rec)
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "t1", Fingerprint: rec.Fingerprint})
	p := store.Progress{Now: at.Add(time.Second), Token: "t1", Cursor: "c1", Deliveries: 100, Matched: 120}
	got, err := s.Checkpoint(context.Background(), rec.ID, p)
	if err != nil {
		t.Fatal(err)
	}
	if got.FanoutCursor != "c1" || got.FanoutDeliveries != 100 || got.Matched != 120 || got.Status != message.Delivering || !got.UpdatedAt.Equal(p.Now) || got.TTL != ttlAfter(p.Now) {
		t.Fatalf("Checkpoint wrote %+v", got)
	}
	// Applied twice (a lost answer, retried): the same record, no error.
	if again, err := s.Checkpoint(context.Background(), rec.ID, p); err != nil || again.FanoutCursor != "c1" {
		t.Fatalf("Checkpoint again = %+v, %v", again, err)
	}
	_, err = s.Checkpoint(context.Background(), rec.ID, store.Progress{Now: p.Now, Token: "t2", Cursor: "c2", Deliveries: 200})
	if old := wantConflict(t, err, store.ErrLeaseLost); old.FanoutCursor != "c1" {
		t.Errorf("the record the conflict carries has cursor %q", old.FanoutCursor)
	}
	done := mustFinish(t, s, rec.ID, store.Outcome{Now: p.Now, Status: message.Delivered, Token: "t1",
		Fanout: &store.Progress{Cursor: "", Deliveries: 150, Matched: 160}})
	if done.Status != message.Delivered || done.FanoutCursor != "" || done.FanoutDeliveries != 150 || done.Matched != 160 {
		t.Fatalf("Finish with Fanout wrote %+v", done)
	}
	equal(t, "Get", mustGet(t, s, rec.ID), done)
	_, err = s.Checkpoint(context.Background(), rec.ID, store.Progress{Now: p.Now, Token: "t1", Cursor: "c3", Deliveries: 300})
	wantConflict(t, err, store.ErrLeaseLost)
}

func testCheckpointRelease(t *testing.T, s store.Store) {
	at := now()
	rec := newRecord(at)
	rec.EventType = "order.shipped"
	mustCreate(t, s, rec)
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "t1", Fingerprint: rec.Fingerprint})
	if _, err := s.Checkpoint(context.Background(), rec.ID, store.Progress{Now: at, Token: "t1", Cursor: "c1", Deliveries: 7, Release: true}); err != nil {
		t.Fatal(err)
	}
	// Applied twice (its answer lost): done, and the attempt given back once.
	if again, err := s.Checkpoint(context.Background(), rec.ID, store.Progress{Now: at, Token: "t1", Cursor: "c1", Deliveries: 7, Release: true}); err != nil || again.Attempts != 0 {
		t.Fatalf("the release again = %+v, %v; want done, with 0 attempts", again, err)
	}
	// The lease is released: the next claim, an instant later, takes the expansion over where
	// it stopped, and counts its own attempt only (the pause gave the first one back).
	got := mustClaim(t, s, rec.ID, store.Claim{Now: at.Add(time.Millisecond), Lease: lease, Token: "t2", Fingerprint: rec.Fingerprint})
	if got.FanoutCursor != "c1" || got.FanoutDeliveries != 7 || got.Attempts != 1 {
		t.Fatalf("the claim after a release = %+v", got)
	}
}

func testCheckpointMissing(t *testing.T, s store.Store) {
	id := message.NewID(now())
	_, err := s.Checkpoint(context.Background(), id, store.Progress{Now: now(), Token: "t1", Cursor: "c1"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Checkpoint of a missing record = %v, want ErrNotFound", err)
	}
}

// testDeliveriesOfAMessage: the deliveries of a fan-out, made by their first claim or finish,
// are listed by message in endpoint id order and counted by state; each is also in its
// endpoint's listing.
func testDeliveriesOfAMessage(t *testing.T, s DeliveryStore) {
	ctx := context.Background()
	at := now()
	msgID := message.NewID(at)
	var eps []string
	for i := range 5 {
		ep := message.NewPrefixedID(message.EndpointIDPrefix, at.Add(time.Duration(i)*time.Millisecond))
		eps = append(eps, ep)
		n := message.Record{MessageID: msgID, EndpointID: ep, Fingerprint: "sha256:fan", CreatedAt: at}
		id := message.DeliveryID(msgID, ep)
		switch i {
		case 0:
			mustFinish(t, s, id, store.Outcome{Now: at, Status: message.Failed, Fingerprint: n.Fingerprint,
				Attempt: &message.Attempt{At: at, Error: message.ReasonEndpointDisabled}, New: &n})
		case 1, 2:
			mustClaim(t, s, id, store.Claim{Now: at, Lease: lease, Token: "t", Fingerprint: n.Fingerprint, New: &n})
			mustFinish(t, s, id, store.Outcome{Now: at, Status: message.Delivered, Token: "t", Attempt: &message.Attempt{At: at, StatusCode: 200}})
		default:
			mustClaim(t, s, id, store.Claim{Now: at, Lease: lease, Token: "t", Fingerprint: n.Fingerprint, New: &n})
		}
	}
	// Another message's delivery to the same endpoint is not this message's.
	other := message.NewID(at)
	n := message.Record{MessageID: other, EndpointID: eps[0], Fingerprint: "sha256:fan", CreatedAt: at}
	mustClaim(t, s, message.DeliveryID(other, eps[0]), store.Claim{Now: at, Lease: lease, Token: "t", Fingerprint: n.Fingerprint, New: &n})

	var got []string
	cursor, pages := "", 0
	for {
		page, err := s.ListMessageDeliveries(ctx, store.MessageDeliveryQuery{MessageID: msgID, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Records {
			if r.MessageID != msgID || r.ID != message.DeliveryID(msgID, r.EndpointID) {
				t.Errorf("listed %+v", r)
			}
			got = append(got, r.EndpointID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
		if pages > 5 {
			t.Fatal("the listing does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(eps) || pages != 3 {
		t.Errorf("listed %v in %d pages, want %v in 3", got, pages, eps)
	}
	counts, err := s.CountDeliveries(ctx, msgID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[message.Status]int{message.Failed: 1, message.Delivered: 2, message.Delivering: 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("CountDeliveries = %v, want %v", counts, want)
	}
	if counts, err := s.CountDeliveries(ctx, message.NewID(at)); err != nil || len(counts) != 0 {
		t.Errorf("CountDeliveries of a message with none = %v, %v", counts, err)
	}
	page, err := s.ListMessageDeliveries(ctx, store.MessageDeliveryQuery{MessageID: msgID, Limit: 1})
	if err != nil || page.Next == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	if _, err := s.ListMessageDeliveries(ctx, store.MessageDeliveryQuery{MessageID: other, Cursor: page.Next}); !errors.Is(err, store.ErrCursor) {
		t.Errorf("another message's cursor: %v, want ErrCursor", err)
	}
	// The endpoint's own listing shows its fan-out deliveries beside its other messages.
	byEndpoint, err := s.ListDeliveries(ctx, store.DeliveryQuery{EndpointID: eps[0]})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range byEndpoint.Records {
		ids = append(ids, r.ID)
	}
	if !slices.Contains(ids, message.DeliveryID(msgID, eps[0])) || !slices.Contains(ids, message.DeliveryID(other, eps[0])) || len(ids) != 2 {
		t.Errorf("the endpoint's listing holds %v", ids)
	}
}
