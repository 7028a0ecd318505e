package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// Against DynamoDB Local, with the answers of chosen calls lost after DynamoDB applied them: the
// SDK's retry fails its condition on the item the first request wrote, and the store must read
// that as done, not as somebody else's record, another worker's lease or a lost lease.
func TestIntegrationLostAnswers(t *testing.T) {
	t.Parallel()
	setupClient := awstest.DynamoDB(t)
	table := awstest.Table(t, setupClient)
	plain := store.NewDynamoDB(setupClient, table, awstest.RecordTTL)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)

	// lossy returns a store whose calls of op numbered in calls (from 1, retries included) have
	// their answers lost.
	lossy := func(t *testing.T, op string, calls ...int) (*store.DynamoDB, *awstest.LossyHTTP) {
		l := awstest.NewLossyHTTP(t, awstest.LoseCalls(op, calls...))
		return store.NewDynamoDB(awstest.LossyDynamoDB(t, l), table, awstest.RecordTTL), l
	}
	newRecord := func(token string) message.Record {
		return message.Record{ID: message.NewID(now), Fingerprint: "sha256:0f", CreatedAt: now, UpdatedAt: now, CreateToken: token}
	}

	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		s, l := lossy(t, "PutItem", 1)
		rec := newRecord("create-lost-1")
		if err := s.Create(ctx, rec); err != nil {
			t.Fatalf("Create whose answer was lost: %v, want nil", err)
		}
		if l.Lost() != 1 || l.Calls("PutItem") != 2 {
			t.Fatalf("lost %d answers in %d calls, want 1 in 2 (the test did not lose the answer)", l.Lost(), l.Calls("PutItem"))
		}
		if got, err := plain.Get(ctx, rec.ID); err != nil || got.CreateToken != rec.CreateToken || got.Status != message.Accepted {
			t.Fatalf("record = %+v, %v", got, err)
		}
	})
	t.Run("CreateWithoutToken", func(t *testing.T) {
		t.Parallel()
		// What the token fixes: without one, the retry reads as somebody else's record.
		s, _ := lossy(t, "PutItem", 1)
		if err := s.Create(ctx, newRecord("")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("Create without a token whose answer was lost: %v, want ErrExists", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s, l := lossy(t, "DeleteItem", 1)
		rec := newRecord("create-lost-2")
		if err := plain.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, rec.ID, rec.CreateToken); err != nil {
			t.Fatalf("Delete whose answer was lost: %v, want nil", err)
		}
		if l.Lost() != 1 {
			t.Fatalf("lost %d answers, want 1", l.Lost())
		}
		if _, err := plain.Get(ctx, rec.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
		}
	})
	t.Run("MarkReplayed", func(t *testing.T) {
		t.Parallel()
		s, l := lossy(t, "UpdateItem", 1)
		rec := newRecord("create-lost-3")
		if err := plain.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		got, err := s.MarkReplayed(ctx, rec.ID, rec.CreateToken, now)
		if err != nil || !got.Replayed || l.Lost() != 1 {
			t.Fatalf("MarkReplayed whose answer was lost = %+v, %v (lost %d), want marked", got, err, l.Lost())
		}
	})
	t.Run("Endpoints", func(t *testing.T) {
		t.Parallel()
		// Create, update and delete, each with its first answer lost: the SDK's retry meets the
		// state the first request made, and the store reads it as done.
		// PutItem call 1 is the create, 2 its retry, 3 the update, 4 its retry.
		l := awstest.NewLossyHTTP(t, func(op string, n int) bool {
			return op == "PutItem" && (n == 1 || n == 3) || op == "DeleteItem" && n == 1
		})
		s := store.NewDynamoDBEndpoints(awstest.LossyDynamoDB(t, l), table)
		rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: endpoint.NewID(now), URL: "https://h.example.com", CreatedAt: now, UpdatedAt: now}, Secret: "v1:s"}
		created, err := s.CreateEndpoint(ctx, rec)
		if err != nil || created.Version != 1 {
			t.Fatalf("create whose answer was lost = version %d, %v; want 1, nil", created.Version, err)
		}
		created.Description = "changed"
		updated, err := s.UpdateEndpoint(ctx, created)
		if err != nil || updated.Version != 2 || updated.Description != "changed" {
			t.Fatalf("update whose answer was lost = %+v, %v; want version 2", updated, err)
		}
		if err := s.DeleteEndpoint(ctx, rec.ID, updated.Version); err != nil {
			t.Fatalf("delete whose answer was lost: %v, want nil", err)
		}
		if calls := l.Calls("PutItem") + l.Calls("DeleteItem"); l.Lost() != 3 || calls != 6 {
			t.Fatalf("lost %d answers in %d writes, want 3 in 6 (the SDK did not retry, or nothing was lost)", l.Lost(), calls)
		}
		if _, err := s.GetEndpoint(ctx, rec.ID); !errors.Is(err, store.ErrEndpointNotFound) {
			t.Fatalf("GetEndpoint after delete: %v", err)
		}
	})
	t.Run("EndpointHealth", func(t *testing.T) {
		t.Parallel()
		// Each health write with its first answer lost (UpdateItem calls 1, 3 and 5; 2, 4 and 6
		// their retries): the retry fails its condition on the state the first request made,
		// and the store reads its own write token there as applied, so the function that
		// disabled the endpoint knows it did, and publishes its one event.
		l := awstest.NewLossyHTTP(t, func(op string, n int) bool { return op == "UpdateItem" && n%2 == 1 })
		s := store.NewDynamoDBEndpoints(awstest.LossyDynamoDB(t, l), table)
		rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: endpoint.NewID(now), URL: "https://h.example.com", CreatedAt: now, UpdatedAt: now}, Secret: "v1:s"}
		if _, err := s.CreateEndpoint(ctx, rec); err != nil {
			t.Fatal(err)
		}
		since, at := now.Add(time.Second), now.Add(time.Hour)
		if got, applied, err := s.MarkEndpointFailing(ctx, rec.ID, since); err != nil || !applied || got.Version != 2 || !got.FailingSince.Equal(since) {
			t.Fatalf("mark failing whose answer was lost = version %d, applied %t, %v; want version 2, applied", got.Version, applied, err)
		}
		if got, applied, err := s.DisableFailingEndpoint(ctx, rec.ID, since, at); err != nil || !applied || got.Version != 3 || !got.Disabled {
			t.Fatalf("disable whose answer was lost = version %d, applied %t, disabled %t, %v; want version 3, applied", got.Version, applied, got.Disabled, err)
		}
		if got, applied, err := s.MarkEndpointHealthy(ctx, rec.ID); err != nil || !applied || got.Version != 4 || got.FailingSince != nil {
			t.Fatalf("mark healthy whose answer was lost = version %d, applied %t, %v; want version 4, applied", got.Version, applied, err)
		}
		if l.Lost() != 3 || l.Calls("UpdateItem") != 6 {
			t.Fatalf("lost %d answers in %d writes, want 3 in 6 (the SDK did not retry, or nothing was lost)", l.Lost(), l.Calls("UpdateItem"))
		}
	})
	for _, status := range []message.Status{message.Retrying, message.Delivered} {
		t.Run("ClaimAndFinish/"+string(status), func(t *testing.T) {
			t.Parallel()
			// The claim's first answer is lost (call 1), the SDK retries it (call 2), then the
			// result write's first answer is lost (call 3) and the SDK retries that (call 4).
			s, l := lossy(t, "UpdateItem", 1, 3)
			rec := newRecord("")
			if err := plain.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			token := "tok-" + string(status)
			claimed, err := s.Claim(ctx, rec.ID, store.Claim{Now: now, Lease: time.Minute, Token: token, Fingerprint: rec.Fingerprint})
			if err != nil {
				t.Fatalf("claim whose first answer was lost: %v (want it read as done)", err)
			}
			if claimed.Status != message.Delivering || claimed.Attempts != 1 || claimed.LeaseToken != token {
				t.Errorf("claim = %s, %d attempts, token %q; want delivering, 1, ours", claimed.Status, claimed.Attempts, claimed.LeaseToken)
			}
			done, err := s.Finish(ctx, rec.ID, store.Outcome{Now: now.Add(time.Second), Status: status, Token: claimed.LeaseToken,
				Attempt: &message.Attempt{At: now, StatusCode: 503}})
			if err != nil {
				t.Fatalf("finish whose first answer was lost: %v (want it read as done)", err)
			}
			if done.Status != status || done.LeaseToken != "" {
				t.Errorf("finish = %s, token %q; want %s, none", done.Status, done.LeaseToken, status)
			}
			got, err := plain.Get(ctx, rec.ID)
			if err != nil || got.Status != status || got.Attempts != 1 {
				t.Errorf("Get = %s, %d attempts (%v); want %s after 1", got.Status, got.Attempts, err, status)
			}
			if calls, lost := l.Calls("UpdateItem"), l.Lost(); calls != 4 || lost != 2 {
				t.Errorf("%d UpdateItem requests with %d answers lost, want 4 with 2: the SDK did not retry", calls, lost)
			}
		})
	}
	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		// The claim (call 1) and the failed result (call 2) are answered; the reopen's first
		// answer is lost (call 3) and the SDK retries it (call 4).
		s, l := lossy(t, "UpdateItem", 3)
		rec := newRecord("")
		if err := plain.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		keep := []byte(`{"id":"` + rec.ID + `","payload":{"n":1}}`)
		if _, err := s.Claim(ctx, rec.ID, store.Claim{Now: now, Lease: time.Minute, Token: "tok-a"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Finish(ctx, rec.ID, store.Outcome{Now: now, Status: message.Failed, Token: "tok-a", Keep: keep,
			Attempt: &message.Attempt{At: now, StatusCode: 404}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Reopen(ctx, rec.ID, store.Reopen{Now: now.Add(time.Second), Token: "reopen-lost"})
		if err != nil {
			t.Fatalf("reopen whose first answer was lost: %v (want it read as done)", err)
		}
		if got.Status != message.Accepted || got.ReopenToken != "reopen-lost" || string(got.Copy) != string(keep) || len(got.History) != 1 {
			t.Errorf("reopen = %s, token %q, copy %q, history %d; want accepted, ours, the copy, 1", got.Status, got.ReopenToken, got.Copy, len(got.History))
		}
		if calls, lost := l.Calls("UpdateItem"), l.Lost(); calls != 4 || lost != 1 {
			t.Errorf("%d UpdateItem requests with %d answers lost, want 4 with 1: the SDK did not retry", calls, lost)
		}
	})
}
