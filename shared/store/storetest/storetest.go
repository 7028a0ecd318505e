// Package storetest is the conformance suite of store.Store: every implementation runs Run, so
// the in-memory store and the DynamoDB store keep the same conditional semantics.
//
// Tests only: no function links it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// TTL is the record TTL the stores under test must be configured with, so the suite can check
// the ttl of every write.
const TTL = 48 * time.Hour

// lease is the lease the suite's claims ask for.
const lease = 30 * time.Second

// Run runs the conformance suite against the stores newStore returns, each configured with TTL.
// Every subtest uses record ids of its own, so newStore may hand out stores sharing one table.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range append([]struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"CreateThenGet", testCreateThenGet},
		{"CreateSetsAccepted", testCreateSetsAccepted},
		{"CreateExisting", testCreateExisting},
		{"CreateAgainWithItsToken", testCreateAgainWithItsToken},
		{"CreateOtherToken", testCreateOtherToken},
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"ClaimAccepted", testClaimAccepted},
		{"ClaimRetrying", testClaimRetrying},
		{"ClaimLiveLease", testClaimLiveLease},
		{"ClaimExpiredLease", testClaimExpiredLease},
		{"ClaimFinal", testClaimFinal},
		{"ClaimMissing", testClaimMissing},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimAppliedTwice", testClaimAppliedTwice},
		{"ClaimStaleCopy", testClaimStaleCopy},
		{"ClaimDeadLettered", testClaimDeadLettered},
		{"FinishDelivered", testFinishDelivered},
		{"FinishRetryingKeepsLastAttempt", testFinishRetryingKeepsLastAttempt},
		{"FinishWrongToken", testFinishWrongToken},
		{"FinishAfterTakeover", testFinishAfterTakeover},
		{"FinishTokenNotDelivering", testFinishTokenNotDelivering},
		{"FinishWithoutToken", testFinishWithoutToken},
		{"FinishWithoutTokenFinal", testFinishWithoutTokenFinal},
		{"FinishMissing", testFinishMissing},
		{"FinishAppliedTwice", testFinishAppliedTwice},
		{"FinishWithoutTokenLiveLease", testFinishWithoutTokenLiveLease},
		{"FinishWithoutTokenStaleCopy", testFinishWithoutTokenStaleCopy},
		{"DeleteAccepted", testDeleteAccepted},
		{"DeletePastAccepted", testDeletePastAccepted},
		{"DeleteMissing", testDeleteMissing},
		{"DeleteTwice", testDeleteTwice},
		{"DeleteOtherToken", testDeleteOtherToken},
		{"DeleteReplayed", testDeleteReplayed},
		{"DeleteWithoutToken", testDeleteWithoutToken},
		{"MarkReplayed", testMarkReplayed},
		{"MarkReplayedPastAccepted", testMarkReplayedPastAccepted},
		{"MarkReplayedOtherToken", testMarkReplayedOtherToken},
		{"MarkReplayedMissing", testMarkReplayedMissing},
		{"MarkReplayedWithoutToken", testMarkReplayedWithoutToken},
		{"CanceledContext", testCanceledContext},
	}, append(fanoutTests, reopenTests...)...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// now is a time both stores keep exactly: UTC, whole milliseconds, with a sub-second part so
// that the truncation of the ttl to seconds is exercised.
func now() time.Time {
	n := time.Now().UTC().Truncate(time.Second)
	return n.Add(987 * time.Millisecond)
}

// newRecord returns an accepted record with every field a Create sets, and a fresh id.
func newRecord(at time.Time) message.Record {
	return message.Record{
		ID:          message.NewID(at),
		Status:      message.Accepted,
		Fingerprint: "sha256:0f1e2d",
		TargetHost:  "hooks.example.com",
		CreatedAt:   at,
		UpdatedAt:   at,
	}
}

// ttlAfter is the ttl a write at t must set.
func ttlAfter(t time.Time) time.Time { return t.Add(TTL).Truncate(time.Second) }

func mustCreate(t *testing.T, s store.Store, rec message.Record) message.Record {
	t.Helper()
	if err := s.Create(context.Background(), rec); err != nil {
		t.Fatalf("Create(%s): %v", rec.ID, err)
	}
	rec.Status = message.Accepted
	rec.TTL = ttlAfter(rec.UpdatedAt)
	return rec
}

func mustGet(t *testing.T, s store.Store, id string) message.Record {
	t.Helper()
	rec, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return rec
}

func mustClaim(t *testing.T, s store.Store, id string, c store.Claim) message.Record {
	t.Helper()
	rec, err := s.Claim(context.Background(), id, c)
	if err != nil {
		t.Fatalf("Claim(%s, %s): %v", id, c.Token, err)
	}
	return rec
}

func mustFinish(t *testing.T, s store.Store, id string, o store.Outcome) message.Record {
	t.Helper()
	rec, err := s.Finish(context.Background(), id, o)
	if err != nil {
		t.Fatalf("Finish(%s, %s): %v", id, o.Status, err)
	}
	return rec
}

// equal fails the test when got and want differ, naming the fields that do.
func equal(t *testing.T, what string, got, want message.Record) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s = %s, want %s", what, gv.Type().Field(i).Name, show(g), show(w))
		}
	}
}

func show(v any) string {
	switch v := v.(type) {
	case *message.Attempt:
		if v != nil {
			return fmt.Sprintf("&%+v", *v)
		}
	case *time.Time:
		if v != nil {
			return "&" + v.String()
		}
	}
	return fmt.Sprintf("%#v", v)
}

// wantConflict checks that err is a *store.ConflictError wrapping sentinel and returns the record
// it carries.
func wantConflict(t *testing.T, err, sentinel error) message.Record {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v, want %v", err, sentinel)
	}
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *store.ConflictError", err)
	}
	return ce.Record
}

func testCreateThenGet(t *testing.T, s store.Store) {
	want := mustCreate(t, s, newRecord(now()))
	equal(t, "Get", mustGet(t, s, want.ID), want)
}

func testCreateSetsAccepted(t *testing.T, s store.Store) {
	rec := newRecord(now())
	rec.Status = message.Delivered
	want := mustCreate(t, s, rec)
	got := mustGet(t, s, rec.ID)
	if got.Status != message.Accepted {
		t.Errorf("status = %q, want %q", got.Status, message.Accepted)
	}
	equal(t, "Get", got, want)
}

func testCreateExisting(t *testing.T, s store.Store) {
	at := now()
	first := mustCreate(t, s, newRecord(at))
	second := first
	second.Fingerprint = "sha256:other"
	second.UpdatedAt = at.Add(time.Minute)
	err := s.Create(context.Background(), second)
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrExists), first)
	equal(t, "Get after conflict", mustGet(t, s, first.ID), first)
}

func testGetMissing(t *testing.T, s store.Store) {
	_, err := s.Get(context.Background(), message.NewID(now()))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	at := now()
	expires := at.Add(72 * time.Hour)
	for _, tc := range []struct {
		name string
		rec  message.Record
	}{
		{"minimal", message.Record{ID: message.NewID(at), CreatedAt: at, UpdatedAt: at}},
		{"no_updated_at", message.Record{ID: message.NewID(at), TargetHost: "a.example", CreatedAt: at}},
		{"every_field", message.Record{
			ID:             message.IDForKey("round-trip-" + message.NewID(at)),
			Status:         message.Accepted,
			Fingerprint:    "sha256:abcdef0123456789",
			IdempotencyKey: "order-42-shipped ~!@#$%^&*()",
			TargetHost:     "hooks.example.com:8443",
			EndpointID:     "ep_06h3230102tq4gpdzyxsvjwpec",
			CreateToken:    "create-token-1",
			Replayed:       true,
			Attempts:       3,
			LeaseToken:     "lease-token-1",
			LeaseUntil:     at.Add(lease),
			FinishedBy:     "lease-token-0",
			LastAttempt: &message.Attempt{
				At: at.Add(-time.Second), StatusCode: 503, Error: "service unavailable", DurationMS: 1234,
			},
			CreatedAt:   at.Add(-time.Hour),
			UpdatedAt:   at,
			DeliveredAt: at.Add(-time.Minute),
			ExpiresAt:   &expires,
		}},
		{"attempt_without_error", message.Record{
			ID: message.NewID(at), CreatedAt: at, UpdatedAt: at,
			LastAttempt: &message.Attempt{At: at, StatusCode: 200},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := mustCreate(t, s, tc.rec)
			if tc.rec.UpdatedAt.IsZero() {
				want.TTL = ttlAfter(tc.rec.CreatedAt)
			}
			equal(t, "Get", mustGet(t, s, tc.rec.ID), want)
		})
	}
}

func testClaimAccepted(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	claimAt := at.Add(2 * time.Second)
	got := mustClaim(t, s, rec.ID, store.Claim{Now: claimAt, Lease: lease, Token: "tok-a"})
	want := rec
	want.Status = message.Delivering
	want.Attempts = 1
	want.LeaseToken = "tok-a"
	want.LeaseUntil = claimAt.Add(lease)
	want.UpdatedAt = claimAt
	want.TTL = ttlAfter(claimAt)
	equal(t, "Claim", got, want)
	equal(t, "Get after Claim", mustGet(t, s, rec.ID), want)
}

func testClaimRetrying(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(time.Second), Status: message.Retrying, Token: "tok-a"})
	again := at.Add(time.Minute)
	got := mustClaim(t, s, rec.ID, store.Claim{Now: again, Lease: lease, Token: "tok-b"})
	if got.Status != message.Delivering || got.Attempts != 2 || got.LeaseToken != "tok-b" ||
		!got.LeaseUntil.Equal(again.Add(lease)) {
		t.Errorf("second claim = status %s, attempts %d, token %q, lease until %v; want delivering, 2, tok-b, %v",
			got.Status, got.Attempts, got.LeaseToken, got.LeaseUntil, again.Add(lease))
	}
}

func testClaimLiveLease(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	held := mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"just_after_claim", at.Add(time.Millisecond)},
		{"at_lease_end", at.Add(lease)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Claim(context.Background(), rec.ID, store.Claim{Now: tc.at, Lease: lease, Token: "tok-b"})
			equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrLeased), held)
		})
	}
	equal(t, "Get after refused claims", mustGet(t, s, rec.ID), held)
}

func testClaimExpiredLease(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	later := at.Add(lease + time.Millisecond)
	got := mustClaim(t, s, rec.ID, store.Claim{Now: later, Lease: lease, Token: "tok-b"})
	if got.LeaseToken != "tok-b" || got.Attempts != 2 || !got.LeaseUntil.Equal(later.Add(lease)) ||
		!got.TTL.Equal(ttlAfter(later)) {
		t.Errorf("takeover = token %q, attempts %d, lease until %v, ttl %v; want tok-b, 2, %v, %v",
			got.LeaseToken, got.Attempts, got.LeaseUntil, got.TTL, later.Add(lease), ttlAfter(later))
	}
}

func testClaimFinal(t *testing.T, s store.Store) {
	for _, status := range []message.Status{message.Delivered, message.Failed, message.Expired} {
		t.Run(string(status), func(t *testing.T) {
			at := now()
			rec := mustCreate(t, s, newRecord(at))
			mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
			final := mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(time.Second), Status: status, Token: "tok-a"})
			// Long after any lease, a final record still refuses.
			_, err := s.Claim(context.Background(), rec.ID, store.Claim{Now: at.Add(time.Hour), Lease: lease, Token: "tok-b"})
			equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrFinal), final)
			equal(t, "Get after refused claim", mustGet(t, s, rec.ID), final)
		})
	}
}

func testClaimMissing(t *testing.T, s store.Store) {
	id := message.NewID(now())
	_, err := s.Claim(context.Background(), id, store.Claim{Now: now(), Lease: lease, Token: "tok-a"})
	wantMissing(t, s, "Claim", id, err)
}

// wantMissing checks that op, made on the missing record id, failed with ErrNotFound and left no
// record behind: a write that finds nothing must not create what it meant to change.
func wantMissing(t *testing.T, s store.Store, op, id string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s(missing) error = %v, want ErrNotFound", op, err)
	}
	if _, err := s.Get(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after %s(missing) error = %v, want ErrNotFound (the %s must not create a record)", op, err, op)
	}
}

func testClaimConcurrent(t *testing.T, s store.Store) {
	const workers = 20
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			_, errs[i] = s.Claim(context.Background(), rec.ID, store.Claim{Now: at, Lease: lease, Token: fmt.Sprintf("tok-%d", i)})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("claims %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrLeased):
			t.Errorf("claim %d: error = %v, want ErrLeased", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no claim won")
	}
	got := mustGet(t, s, rec.ID)
	if got.Attempts != 1 || got.LeaseToken != fmt.Sprintf("tok-%d", winner) {
		t.Errorf("record after race: attempts %d, token %q; want 1, tok-%d", got.Attempts, got.LeaseToken, winner)
	}
}

func testFinishDelivered(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	claimed := mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	done := at.Add(1500 * time.Millisecond)
	attempt := &message.Attempt{At: at.Add(time.Millisecond), StatusCode: 204, DurationMS: 1499}
	got := mustFinish(t, s, rec.ID, store.Outcome{Now: done, Status: message.Delivered, Token: "tok-a", Attempt: attempt})
	want := claimed
	want.Status = message.Delivered
	want.LeaseToken = ""
	want.LeaseUntil = time.Time{}
	want.FinishedBy = "tok-a"
	want.LastAttempt = &message.Attempt{At: attempt.At, StatusCode: 204, DurationMS: 1499}
	want.UpdatedAt = done
	want.DeliveredAt = done
	want.TTL = ttlAfter(done)
	equal(t, "Finish", got, want)
	equal(t, "Get after Finish", mustGet(t, s, rec.ID), want)
	attempt.StatusCode = 999 // the store must not keep the caller's pointer
	equal(t, "Get after changing the attempt", mustGet(t, s, rec.ID), want)
}

func testFinishRetryingKeepsLastAttempt(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	attempt := message.Attempt{At: at, StatusCode: 503, Error: "upstream said 503", DurationMS: 20}
	got := mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(time.Second), Status: message.Retrying, Token: "tok-a", Attempt: &attempt})
	if got.Status != message.Retrying || !got.DeliveredAt.IsZero() || got.LastAttempt == nil || *got.LastAttempt != attempt {
		t.Fatalf("Finish(retrying) = status %s, delivered at %v, last attempt %s", got.Status, got.DeliveredAt, show(got.LastAttempt))
	}
	mustClaim(t, s, rec.ID, store.Claim{Now: at.Add(time.Minute), Lease: lease, Token: "tok-b"})
	// An outcome without an attempt (a worker that gave up before sending) keeps the last one.
	got = mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(2 * time.Minute), Status: message.Expired, Token: "tok-b"})
	if got.Status != message.Expired || got.LastAttempt == nil || *got.LastAttempt != attempt || got.Attempts != 2 {
		t.Errorf("Finish(expired, no attempt) = status %s, attempts %d, last attempt %s; want expired, 2, %+v",
			got.Status, got.Attempts, show(got.LastAttempt), attempt)
	}
}

func testFinishWrongToken(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	claimed := mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	_, err := s.Finish(context.Background(), rec.ID, store.Outcome{Now: at.Add(time.Second), Status: message.Delivered, Token: "tok-x"})
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrLeaseLost), claimed)
	equal(t, "Get after refused finish", mustGet(t, s, rec.ID), claimed)
}

func testFinishAfterTakeover(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	taken := mustClaim(t, s, rec.ID, store.Claim{Now: at.Add(time.Minute), Lease: lease, Token: "tok-b"})
	_, err := s.Finish(context.Background(), rec.ID, store.Outcome{Now: at.Add(time.Minute), Status: message.Delivered, Token: "tok-a"})
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrLeaseLost), taken)
	delivered := mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(2 * time.Minute), Status: message.Delivered, Token: "tok-b"})
	equal(t, "Get after the new holder's Finish", mustGet(t, s, rec.ID), delivered)
}

func testFinishTokenNotDelivering(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, newRecord(now()))
	_, err := s.Finish(context.Background(), rec.ID, store.Outcome{Now: now(), Status: message.Delivered, Token: "tok-a"})
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrLeaseLost), rec)
}

func testFinishWithoutToken(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name  string
		claim bool
	}{{"accepted", false}, {"delivering", true}} {
		t.Run(tc.name, func(t *testing.T) {
			at := now()
			rec := mustCreate(t, s, newRecord(at))
			done := at.Add(time.Second)
			if tc.claim {
				// A lease that ran out: its worker died without recording a result.
				mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
				done = at.Add(lease + time.Millisecond)
			}
			got := mustFinish(t, s, rec.ID, store.Outcome{Now: done, Status: message.Expired})
			if got.Status != message.Expired || got.LeaseToken != "" || !got.LeaseUntil.IsZero() ||
				!got.DeliveredAt.IsZero() || !got.UpdatedAt.Equal(done) || !got.TTL.Equal(ttlAfter(done)) {
				t.Errorf("Finish(expired) = %+v", got)
			}
			equal(t, "Get after Finish", mustGet(t, s, rec.ID), got)
		})
	}
}

func testFinishWithoutTokenFinal(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	final := mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Failed})
	_, err := s.Finish(context.Background(), rec.ID, store.Outcome{Now: at.Add(time.Second), Status: message.Expired})
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrFinal), final)
}

func testFinishMissing(t *testing.T, s store.Store) {
	for _, token := range []string{"", "tok-a"} {
		t.Run("token="+token, func(t *testing.T) {
			id := message.NewID(now())
			_, err := s.Finish(context.Background(), id, store.Outcome{Now: now(), Status: message.Delivered, Token: token})
			wantMissing(t, s, "Finish", id, err)
		})
	}
}

// testClaimAppliedTwice is a claim whose answer was lost and which is made again (as the SDK
// does): the second call must read as done, not as another worker's lease.
func testClaimAppliedTwice(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	c := store.Claim{Now: at, Lease: lease, Token: "tok-a", Fingerprint: rec.Fingerprint}
	first := mustClaim(t, s, rec.ID, c)
	c.Now = at.Add(300 * time.Millisecond) // the retry's own clock
	again, err := s.Claim(context.Background(), rec.ID, c)
	if err != nil {
		t.Fatalf("the same claim again: %v, want it read as done", err)
	}
	equal(t, "the same claim again", again, first)
	equal(t, "Get after the claim made twice", mustGet(t, s, rec.ID), first)
	// Another token still meets the lease.
	_, err = s.Claim(context.Background(), rec.ID, store.Claim{Now: c.Now, Lease: lease, Token: "tok-b"})
	wantConflict(t, err, store.ErrLeased)
}

func testClaimStaleCopy(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	for _, name := range []string{"accepted", "leased"} {
		t.Run(name, func(t *testing.T) {
			before := mustGet(t, s, rec.ID)
			_, err := s.Claim(context.Background(), rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-stale", Fingerprint: "sha256:earlier"})
			equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrStale), before)
			equal(t, "Get after a stale claim", mustGet(t, s, rec.ID), before)
		})
		mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-own", Fingerprint: rec.Fingerprint})
	}
	// A copy that carries no fingerprint (queued before copies did) is not checked.
	later := at.Add(lease + time.Millisecond)
	got := mustClaim(t, s, rec.ID, store.Claim{Now: later, Lease: lease, Token: "tok-old-copy"})
	if got.LeaseToken != "tok-old-copy" {
		t.Errorf("claim without a fingerprint: token %q", got.LeaseToken)
	}
}

// testClaimDeadLettered: a record failed because its copy went to the dead-letter queue may be
// claimed again by that copy, redriven; a record failed for another reason may not.
func testClaimDeadLettered(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Failed, Token: "tok-a",
		Attempt: &message.Attempt{At: at, StatusCode: 503, Error: message.ReasonDeadLettered + ": 503 Service Unavailable"}})
	got := mustClaim(t, s, rec.ID, store.Claim{Now: at.Add(time.Hour), Lease: lease, Token: "tok-redriven", Fingerprint: rec.Fingerprint})
	if got.Status != message.Delivering || got.Attempts != 2 || got.LeaseToken != "tok-redriven" {
		t.Errorf("claim of a dead-lettered record = %s, %d attempts, token %q; want delivering, 2, tok-redriven", got.Status, got.Attempts, got.LeaseToken)
	}
	failed := mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(time.Hour), Status: message.Failed, Token: "tok-redriven",
		Attempt: &message.Attempt{At: at, StatusCode: 404}})
	_, err := s.Claim(context.Background(), rec.ID, store.Claim{Now: at.Add(2 * time.Hour), Lease: lease, Token: "tok-c"})
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrFinal), failed)
}

// testFinishAppliedTwice is a result write whose answer was lost and which is made again: the
// second call must read as done, even after the record moved on, and change nothing.
func testFinishAppliedTwice(t *testing.T, s store.Store) {
	for _, status := range []message.Status{message.Delivered, message.Retrying, message.Failed} {
		t.Run(string(status), func(t *testing.T) {
			at := now()
			rec := mustCreate(t, s, newRecord(at))
			mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
			o := store.Outcome{Now: at.Add(time.Second), Status: status, Token: "tok-a", Attempt: &message.Attempt{At: at, StatusCode: 500}}
			first := mustFinish(t, s, rec.ID, o)
			o.Now = at.Add(2 * time.Second)
			again, err := s.Finish(context.Background(), rec.ID, o)
			if err != nil {
				t.Fatalf("the same finish again: %v, want it read as done", err)
			}
			equal(t, "the same finish again", again, first)
			equal(t, "Get after the finish made twice", mustGet(t, s, rec.ID), first)
			if status != message.Retrying {
				return
			}
			// The next attempt's worker claims it; the first finish's late retry changes nothing.
			taken := mustClaim(t, s, rec.ID, store.Claim{Now: at.Add(time.Minute), Lease: lease, Token: "tok-b"})
			if _, err := s.Finish(context.Background(), rec.ID, o); err != nil {
				t.Fatalf("the first finish again after a new claim: %v, want it read as done", err)
			}
			equal(t, "Get after a late retry of the first finish", mustGet(t, s, rec.ID), taken)
		})
	}
}

// testFinishWithoutTokenLiveLease: a write no claim preceded (an expired or malformed copy) never
// overwrites a live lease; once the lease has run out it applies.
func testFinishWithoutTokenLiveLease(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	held := mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	for _, when := range []time.Duration{time.Second, lease} {
		_, err := s.Finish(context.Background(), rec.ID, store.Outcome{Now: at.Add(when), Status: message.Failed})
		equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrLeased), held)
	}
	equal(t, "Get after refused finishes", mustGet(t, s, rec.ID), held)
	got := mustFinish(t, s, rec.ID, store.Outcome{Now: at.Add(lease + time.Millisecond), Status: message.Expired})
	if got.Status != message.Expired || got.LeaseToken != "" {
		t.Errorf("finish after the lease ran out = status %s, token %q", got.Status, got.LeaseToken)
	}
	// The holder of the lease that ran out has lost it.
	_, err := s.Finish(context.Background(), rec.ID, store.Outcome{Now: at.Add(lease + time.Second), Status: message.Delivered, Token: "tok-a"})
	wantConflict(t, err, store.ErrLeaseLost)
}

func testFinishWithoutTokenStaleCopy(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	_, err := s.Finish(context.Background(), rec.ID, store.Outcome{Now: at, Status: message.Failed, Fingerprint: "sha256:earlier"})
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrStale), rec)
	equal(t, "Get after a stale finish", mustGet(t, s, rec.ID), rec)
	got := mustFinish(t, s, rec.ID, store.Outcome{Now: at, Status: message.Failed, Fingerprint: rec.Fingerprint})
	if got.Status != message.Failed {
		t.Errorf("finish with the record's own fingerprint = status %s", got.Status)
	}
}

func testDeleteAccepted(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, withToken(newRecord(now())))
	if err := s.Delete(context.Background(), rec.ID, rec.CreateToken); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(context.Background(), rec.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	// The id is free again.
	mustCreate(t, s, rec)
}

func testDeletePastAccepted(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, withToken(newRecord(at)))
	claimed := mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	err := s.Delete(context.Background(), rec.ID, rec.CreateToken)
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrNotAccepted), claimed)
	equal(t, "Get after refused Delete", mustGet(t, s, rec.ID), claimed)
}

func testDeleteMissing(t *testing.T, s store.Store) {
	if err := s.Delete(context.Background(), message.NewID(now()), "create-1"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

// withToken gives rec a create token of its own.
func withToken(rec message.Record) message.Record {
	rec.CreateToken = "create-" + rec.ID
	return rec
}

func testCreateAgainWithItsToken(t *testing.T, s store.Store) {
	// The SDK's retry of a create whose answer was lost meets the condition its first write made
	// true: the create must still report success, and change nothing.
	at := now()
	first := mustCreate(t, s, withToken(newRecord(at)))
	again := first
	again.UpdatedAt = at.Add(time.Second)
	if err := s.Create(context.Background(), again); err != nil {
		t.Fatalf("Create again with its own token: %v, want nil", err)
	}
	equal(t, "Get after the second Create", mustGet(t, s, first.ID), first)
}

func testCreateOtherToken(t *testing.T, s store.Store) {
	at := now()
	first := mustCreate(t, s, withToken(newRecord(at)))
	for _, token := range []string{"create-other", ""} {
		second := first
		second.CreateToken = token
		err := s.Create(context.Background(), second)
		equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrExists), first)
	}
	equal(t, "Get after conflicts", mustGet(t, s, first.ID), first)
}

func testDeleteTwice(t *testing.T, s store.Store) {
	// The SDK's retry of a delete whose answer was lost finds nothing: success.
	rec := mustCreate(t, s, withToken(newRecord(now())))
	for i := range 2 {
		if err := s.Delete(context.Background(), rec.ID, rec.CreateToken); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
}

func testDeleteOtherToken(t *testing.T, s store.Store) {
	// Another create's record: the one the caller created is gone already, and this one stays.
	rec := mustCreate(t, s, withToken(newRecord(now())))
	for _, token := range []string{"create-other", ""} {
		if err := s.Delete(context.Background(), rec.ID, token); err != nil {
			t.Fatalf("Delete with token %q: %v, want nil", token, err)
		}
		equal(t, "Get after Delete with token "+token, mustGet(t, s, rec.ID), rec)
	}
}

func testDeleteReplayed(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, withToken(newRecord(at)))
	marked, err := s.MarkReplayed(context.Background(), rec.ID, rec.CreateToken, at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Delete(context.Background(), rec.ID, rec.CreateToken)
	equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrReplayed), marked)
	equal(t, "Get after refused Delete", mustGet(t, s, rec.ID), marked)
}

func testDeleteWithoutToken(t *testing.T, s store.Store) {
	// A record written before creates carried tokens is removed by a delete that gives none.
	rec := mustCreate(t, s, newRecord(now()))
	if err := s.Delete(context.Background(), rec.ID, ""); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(context.Background(), rec.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
}

func testMarkReplayed(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, withToken(newRecord(at)))
	later := at.Add(time.Hour)
	for i := range 2 { // marking again (the SDK's retry of a lost answer) is the same write
		got, err := s.MarkReplayed(context.Background(), rec.ID, rec.CreateToken, later)
		if err != nil {
			t.Fatalf("MarkReplayed #%d: %v", i+1, err)
		}
		want := rec
		want.Replayed = true
		want.TTL = ttlAfter(later)
		equal(t, "MarkReplayed", got, want)
		equal(t, "Get after MarkReplayed", mustGet(t, s, rec.ID), want)
	}
}

func testMarkReplayedPastAccepted(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, withToken(newRecord(at)))
	claimed := mustClaim(t, s, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
	got, err := s.MarkReplayed(context.Background(), rec.ID, rec.CreateToken, at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := claimed
	want.Replayed = true
	want.TTL = ttlAfter(at.Add(time.Second))
	equal(t, "MarkReplayed", got, want)
}

func testMarkReplayedOtherToken(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, withToken(newRecord(at)))
	for _, token := range []string{"create-other", ""} {
		_, err := s.MarkReplayed(context.Background(), rec.ID, token, at)
		equal(t, "ConflictError.Record", wantConflict(t, err, store.ErrReplaced), rec)
	}
	equal(t, "Get after refused marks", mustGet(t, s, rec.ID), rec)
}

func testMarkReplayedMissing(t *testing.T, s store.Store) {
	id := message.NewID(now())
	_, err := s.MarkReplayed(context.Background(), id, "create-1", now())
	wantMissing(t, s, "MarkReplayed", id, err)
}

func testMarkReplayedWithoutToken(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	_, err := s.MarkReplayed(context.Background(), rec.ID, "create-other", at)
	wantConflict(t, err, store.ErrReplaced)
	got, err := s.MarkReplayed(context.Background(), rec.ID, "", at)
	if err != nil || !got.Replayed {
		t.Fatalf("MarkReplayed without a token = %+v, %v; want marked", got, err)
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	at := now()
	rec := mustCreate(t, s, newRecord(at))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fresh := newRecord(at)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Create", func() error { return s.Create(ctx, fresh) }},
		{"Get", func() error { _, err := s.Get(ctx, rec.ID); return err }},
		{"Claim", func() error {
			_, err := s.Claim(ctx, rec.ID, store.Claim{Now: at, Lease: lease, Token: "tok-a"})
			return err
		}},
		{"Finish", func() error {
			_, err := s.Finish(ctx, rec.ID, store.Outcome{Now: at, Status: message.Expired})
			return err
		}},
		{"Delete", func() error { return s.Delete(ctx, rec.ID, rec.CreateToken) }},
		{"MarkReplayed", func() error { _, err := s.MarkReplayed(ctx, rec.ID, rec.CreateToken, at); return err }},
	} {
		if err := tc.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: error = %v, want context.Canceled", tc.name, err)
		}
	}
	equal(t, "Get after canceled calls", mustGet(t, s, rec.ID), rec)
	if _, err := s.Get(context.Background(), fresh.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of the record a canceled Create was given: error = %v, want ErrNotFound", err)
	}
}
