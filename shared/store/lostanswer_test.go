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
	client, lost := awstest.DynamoDBLostAnswers(t)
	table := awstest.Name(t)
	dropTable(t, client, table)
	if err := store.CreateTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	s := store.NewDynamoDB(client, table, time.Hour)
	at := time.Now().UTC().Truncate(time.Millisecond)
	for _, status := range []message.Status{message.Retrying, message.Delivered} {
		t.Run(string(status), func(t *testing.T) {
			id := message.NewID(at)
			if err := s.Create(ctx, message.Record{ID: id, Fingerprint: "sha256:aa", CreatedAt: at, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
			calls0, dropped0 := lost.Counts("UpdateItem")

			lost.Arm("UpdateItem", 1)
			claimed, err := s.Claim(ctx, id, store.Claim{Now: at, Lease: time.Minute, Token: "tok-" + string(status), Fingerprint: "sha256:aa"})
			if err != nil {
				t.Fatalf("claim whose first answer was lost: %v (want it read as done)", err)
			}
			if claimed.Status != message.Delivering || claimed.Attempts != 1 || claimed.LeaseToken != "tok-"+string(status) {
				t.Errorf("claim = %s, %d attempts, token %q; want delivering, 1, ours", claimed.Status, claimed.Attempts, claimed.LeaseToken)
			}

			lost.Arm("UpdateItem", 1)
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
			calls, dropped := lost.Counts("UpdateItem")
			if calls-calls0 != 4 || dropped-dropped0 != 2 {
				t.Errorf("%d UpdateItem requests with %d answers lost, want 4 with 2: the SDK did not retry", calls-calls0, dropped-dropped0)
			}
		})
	}
}
