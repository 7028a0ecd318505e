package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// TestIntegrationDynamoDBLostAnswer drops the answer of a claim and of a result write after
// DynamoDB Local applied them: the SDK's retry fails its condition on the item the first request
// wrote, and the store must read that as done, not as another worker's lease or a lost lease.
func TestIntegrationDynamoDBLostAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := awstest.DynamoDB(t)
	table := awstest.Name(t)
	dropTable(t, setup, table)
	if err := store.CreateTable(ctx, setup, table); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	for _, status := range []message.Status{message.Retrying, message.Delivered} {
		t.Run(string(status), func(t *testing.T) {
			// The claim's first answer is lost (call 1), the SDK retries it (call 2), then the
			// result write's first answer is lost (call 3) and the SDK retries that (call 4).
			lost := awstest.NewLossyHTTP(t, awstest.LoseCalls("UpdateItem", 1, 3))
			s := store.NewDynamoDB(awstest.LossyDynamoDB(t, lost), table, time.Hour)
			id := message.NewID(at)
			if err := s.Create(ctx, message.Record{ID: id, Fingerprint: "sha256:aa", CreatedAt: at, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
			claimed, err := s.Claim(ctx, id, store.Claim{Now: at, Lease: time.Minute, Token: "tok-" + string(status), Fingerprint: "sha256:aa"})
			if err != nil {
				t.Fatalf("claim whose first answer was lost: %v (want it read as done)", err)
			}
			if claimed.Status != message.Delivering || claimed.Attempts != 1 || claimed.LeaseToken != "tok-"+string(status) {
				t.Errorf("claim = %s, %d attempts, token %q; want delivering, 1, ours", claimed.Status, claimed.Attempts, claimed.LeaseToken)
			}

			done, err := s.Finish(ctx, id, store.Outcome{Now: at.Add(time.Second), Status: status, Token: claimed.LeaseToken,
				Attempt: &message.Attempt{At: at, StatusCode: 503}})
			if err != nil {
				t.Fatalf("finish whose first answer was lost: %v (want it read as done)", err)
			}
			if done.Status != status || done.LeaseToken != "" {
				t.Errorf("finish = %s, token %q; want %s, none", done.Status, done.LeaseToken, status)
			}
			got, err := s.Get(ctx, id)
			if err != nil || got.Status != status || got.Attempts != 1 {
				t.Errorf("Get = %s, %d attempts (%v); want %s after 1", got.Status, got.Attempts, err, status)
			}
			if calls, dropped := lost.Calls("UpdateItem"), lost.Lost(); calls != 4 || dropped != 2 {
				t.Errorf("%d UpdateItem requests with %d answers lost, want 4 with 2: the SDK did not retry", calls, dropped)
			}
		})
	}
}
