package deliver

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/push"
	"github.com/pushfn/pushfn/shared/store"
)

// countingDynamoDB counts the GetItem requests the endpoint store makes.
type countingDynamoDB struct {
	*dynamodb.Client
	gets atomic.Int64
}

func (c *countingDynamoDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.Client.GetItem(ctx, in, optFns...)
}

// TestIntegrationEndpoints delivers messages to endpoints kept in DynamoDB Local, their records
// there too: a batch to one endpoint reads its item once, disabled and deleted endpoints end
// their messages failed with no attempt, and the records keep their endpoint ids.
func TestIntegrationEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ddb := awstest.DynamoDB(t)
	table := awstest.Table(t, ddb)
	counted := &countingDynamoDB{Client: ddb}
	eps := store.NewDynamoDBEndpoints(counted, table)
	kr, err := endpoint.NewKeyring("an-endpoint-secrets-key-of-the-integration-test")
	if err != nil {
		t.Fatal(err)
	}
	db := store.NewDynamoDB(ddb, table, awstest.RecordTTL)
	b := newBundle(t, func(h *Handler) {
		h.Store = db
		h.Endpoints = NewEndpointCache(eps, kr, message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true})
	})
	rc := newCapture(t)
	create := func(disabled bool) (string, endpoint.Secret) {
		id, secret := endpoint.NewID(time.Now()), endpoint.GenerateSecret()
		rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: id, URL: rc.URL + "/ep", Disabled: disabled, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
		rec.Secret = kr.Seal(id, secret)
		if _, err := eps.CreateEndpoint(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return id, secret
	}
	enabled, secret := create(false)
	disabled, _ := create(true)
	deleted, _ := create(false)
	if err := eps.DeleteEndpoint(ctx, deleted, 1); err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	want := map[string]string{} // message id → the endpoint it goes to
	for i := range 42 {
		ep := enabled
		switch i {
		case 40:
			ep = disabled
		case 41:
			ep = deleted
		}
		id := message.NewID(time.Now())
		if err := db.Create(ctx, message.Record{ID: id, Fingerprint: fingerprint(id), EndpointID: ep, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, b.sqsRecord(t, message.Envelope{ID: id, Fingerprint: fingerprint(id), EndpointID: ep, Payload: json.RawMessage(`{"n":1}`)}))
		want[id] = ep
	}
	gets := counted.gets.Load()
	resp, err := b.h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	if n := counted.gets.Load() - gets; n != 3 {
		t.Errorf("%d endpoint reads for 42 messages to 3 endpoints, want 3", n)
	}
	for id, ep := range want {
		rec, err := db.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		hs, body := rc.got(id)
		switch ep {
		case enabled:
			if rec.Status != message.Delivered || rec.Attempts != 1 || len(hs) != 1 || rec.EndpointID != enabled {
				t.Errorf("%s: %s after %d attempts, %d pushes, endpoint %q", id, rec.Status, rec.Attempts, len(hs), rec.EndpointID)
				continue
			}
			if err := (push.Verifier{Keys: [][]byte{secret.Key()}}).Verify(hs[0].Get(push.HeaderID), hs[0].Get(push.HeaderTimestamp), hs[0].Get(push.HeaderSignature), body, time.Now()); err != nil {
				t.Errorf("%s: signature: %v", id, err)
			}
		default:
			reason := map[string]string{disabled: message.ReasonEndpointDisabled, deleted: message.ReasonEndpointDeleted}[ep]
			if rec.Status != message.Failed || rec.Attempts != 0 || rec.LastAttempt == nil || rec.LastAttempt.Error != reason || len(hs) != 0 {
				t.Errorf("%s: %+v with %d pushes, want failed (%s) with no attempt and no push", id, rec, len(hs), reason)
			}
		}
	}
}
