package deliver

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// endpointWrites counts the item writes the endpoint store sends to DynamoDB (every one of its
// writes is to an endpoint item).
type endpointWrites struct {
	*dynamodb.Client
	n atomic.Int64
}

func (c *endpointWrites) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.n.Add(1)
	return c.Client.PutItem(ctx, in, optFns...)
}

func (c *endpointWrites) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.n.Add(1)
	return c.Client.UpdateItem(ctx, in, optFns...)
}

func (c *endpointWrites) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.n.Add(1)
	return c.Client.DeleteItem(ctx, in, optFns...)
}

// TestIntegrationEndpointHealth delivers to an endpoint kept in DynamoDB Local whose receiver
// answers 503, through two handlers (two warm containers) with ENDPOINT_DISABLE_AFTER one
// minute on a fake clock: 120 failed deliveries cost at most one endpoint item write per
// container (failing_since, once applied), the endpoint is disabled once, with one event, by at
// most one more write per container, and the 40 deliveries after that end failed
// endpoint_disabled with no push and no endpoint write.
func TestIntegrationEndpointHealth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ddb := awstest.DynamoDB(t)
	table := awstest.Table(t, ddb)
	writes := &endpointWrites{Client: ddb}
	eps := store.NewDynamoDBEndpoints(writes, table)
	kr, err := endpoint.NewKeyring("an-endpoint-secrets-key-of-the-integration-test")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now()}
	published := &eventLog{}
	db := store.NewDynamoDB(ddb, table, awstest.RecordTTL)
	container := func() *Handler {
		b := newBundle(t, func(h *Handler) {
			h.Store = db
			cache := NewEndpointCache(eps, kr, message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true})
			cache.Now = clock.Now
			h.Endpoints, h.Now = cache, clock.Now
			h.Health = &Health{Store: eps, Events: published}
			h.Config.EndpointDisableAfter = time.Minute
		})
		return b.h
	}
	handlers := []*Handler{container(), container()}
	sqs := newBundle(t, nil) // makes SQS records

	rc := newSwitchable(t, http.StatusServiceUnavailable)
	id := endpoint.NewID(clock.Now())
	rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: id, TenantID: "acme", URL: rc.URL, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}}
	rec.Secret = kr.Seal(id, endpoint.GenerateSecret())
	if _, err := eps.CreateEndpoint(ctx, rec); err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	// round hands each container a batch of n messages to the endpoint, at the same time, and
	// returns the messages' ids.
	round := func(n int) []string {
		batches := make([]events.SQSEvent, len(handlers))
		var ids []string
		for i := range handlers {
			for range n {
				mid := message.NewID(clock.Now())
				if err := db.Create(ctx, message.Record{ID: mid, Fingerprint: fingerprint(mid), EndpointID: id, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}); err != nil {
					t.Fatal(err)
				}
				batches[i].Records = append(batches[i].Records, sqs.sqsRecord(t, message.Envelope{ID: mid, Fingerprint: fingerprint(mid), EndpointID: id, Payload: []byte(`{"n":1}`)}))
				ids = append(ids, mid)
			}
		}
		var wg sync.WaitGroup
		for i, h := range handlers {
			wg.Go(func() {
				if _, err := h.Handle(ctx, batches[i]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return ids
	}

	before := writes.n.Load()
	for range 6 { // 120 failed deliveries over 50 seconds, within ENDPOINT_DISABLE_AFTER
		round(10)
		clock.add(10 * time.Second)
	}
	failingWrites := writes.n.Load() - before
	if n := rc.pushes.Load(); n != 120 {
		t.Fatalf("%d pushes, want 120", n)
	}
	got, err := eps.GetEndpoint(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if failingWrites < 1 || failingWrites > int64(len(handlers)) || got.Version != 2 || got.FailingSince == nil || !got.FailingSince.Equal(start) || got.Disabled {
		t.Fatalf("after 120 failed deliveries: %d endpoint writes, version %d, failing since %v, disabled %t; want 1 to %d writes, version 2, failing since %v, enabled",
			failingWrites, got.Version, got.FailingSince, got.Disabled, len(handlers), start)
	}

	clock.add(20 * time.Second) // a minute and more since the first failure
	at := clock.Now()
	before = writes.n.Load()
	round(10)
	disableWrites := writes.n.Load() - before
	got, err = eps.GetEndpoint(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if disableWrites < 1 || disableWrites > int64(len(handlers)) || got.Version != 3 || !got.Disabled ||
		got.DisabledReason != endpoint.ReasonFailing || got.DisabledAt == nil || !got.DisabledAt.Equal(at) {
		t.Fatalf("after a minute of failure: %d endpoint writes, version %d, disabled %t (%q at %v); want 1 to %d writes, version 3, disabled %q at %v",
			disableWrites, got.Version, got.Disabled, got.DisabledReason, got.DisabledAt, len(handlers), endpoint.ReasonFailing, at)
	}
	if evs := published.all(); len(evs) != 1 || evs[0].DetailType != DetailTypeEndpointDisabled {
		t.Fatalf("events %+v, want one %s", evs, DetailTypeEndpointDisabled)
	}

	pushes := rc.pushes.Load()
	before = writes.n.Load()
	for _, mid := range round(20) {
		r, err := db.Get(ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != message.Failed || r.Attempts != 0 || r.LastAttempt == nil || r.LastAttempt.Error != message.ReasonEndpointDisabled {
			t.Fatalf("a delivery after the disabling: %s after %d attempts (%+v); want failed %s", r.Status, r.Attempts, r.LastAttempt, message.ReasonEndpointDisabled)
		}
	}
	if n, w := rc.pushes.Load()-pushes, writes.n.Load()-before; n != 0 || w != 0 {
		t.Fatalf("after the disabling: %d pushes, %d endpoint writes; want none", n, w)
	}
	t.Logf("endpoint item writes: %d for 120 failed deliveries, %d for the 20 that disabled it, 0 for the 40 after (2 containers)", failingWrites, disableWrites)
}
