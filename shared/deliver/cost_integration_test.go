package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pushfn/pushfn/shared/endpoint"
	"github.com/pushfn/pushfn/shared/ingest"
	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/queue"
	"github.com/pushfn/pushfn/shared/store"
)

// requestCounter counts the requests a DynamoDB client sends, by operation, each retry included
// (it sits at the end of the finalize step, after the SDK's retry loop).
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) client(t *testing.T) *dynamodb.Client {
	return dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("pushfn-count", func(ctx context.Context, in middleware.FinalizeInput,
				next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.n[awsmiddleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
		})
	})
}

// writes and reads are the item writes and reads among the counted requests.
func (c *requestCounter) writes() int { return c.sum("PutItem", "UpdateItem", "DeleteItem") }
func (c *requestCounter) reads() int  { return c.sum("GetItem", "Query") }

func (c *requestCounter) sum(ops ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, op := range ops {
		n += c.n[op]
	}
	for op := range c.n {
		switch op {
		case "PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query":
		default:
			panic("a request this count does not classify: " + op)
		}
	}
	return n
}

func (c *requestCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ops []string
	for op, n := range c.n {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(ops)
	return fmt.Sprint(ops)
}

// TestIntegrationCostPerDelivery counts the DynamoDB requests of the api and the deliver
// function, each through its own counting client, while 50 messages fan out to a tenant's 3
// endpoints and 50 go to an endpoint by id, all through fauxqs and DynamoDB Local: at most 3
// writes per delivery, the message's and the fan-out's share included, and a number of reads
// that does not grow with the deliveries (a warm function reads endpoints through its caches).
func TestIntegrationCostPerDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup, sq := awstest.DynamoDB(t), awstest.SQS(t)
	table := awstest.Table(t, setup)
	queueURL, _ := awstest.Queues(t, sq, 20, 30*time.Second)
	kr, err := endpoint.NewKeyring("an-endpoint-secrets-key-of-the-cost-test")
	if err != nil {
		t.Fatal(err)
	}
	var pushes atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { pushes.Add(1) }))
	t.Cleanup(target.Close)
	setupEndpoints := store.NewDynamoDBEndpoints(setup, table)
	create := func(tenant string) string {
		id := endpoint.NewID(time.Now())
		rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: id, TenantID: tenant, URL: target.URL + "/" + id, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
		rec.Secret = kr.Seal(id, endpoint.GenerateSecret())
		if _, err := setupEndpoints.CreateEndpoint(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for range 3 {
		create("acme")
	}
	direct := create("")

	apiCount, deliverCount := &requestCounter{n: map[string]int{}}, &requestCounter{n: map[string]int{}}
	apiDB, deliverDB := apiCount.client(t), deliverCount.client(t)
	api := &ingest.Enqueuer{Store: store.NewDynamoDB(apiDB, table, awstest.RecordTTL), Producer: queue.NewProducer(sq, queueURL),
		Endpoints: ingest.NewEndpointCache(store.NewDynamoDBEndpoints(apiDB, table))}
	const fanOuts, directs = 50, 50
	var msgs []message.Message
	for i := range fanOuts {
		msgs = append(msgs, message.Message{EventType: "order.shipped", TenantID: "acme", Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
	}
	for i := range directs {
		msgs = append(msgs, message.Message{EndpointID: direct, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
	}
	if err := api.CheckEndpoints(ctx, msgs, true); err != nil {
		t.Fatal(err)
	}
	for _, res := range api.Enqueue(ctx, msgs) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}

	deliverEndpoints := store.NewDynamoDBEndpoints(deliverDB, table)
	b := newBundle(t, func(h *Handler) {
		h.Store = store.NewDynamoDB(deliverDB, table, awstest.RecordTTL)
		// The caches keep what they read for 30 s of real time; on a busy machine this test can
		// outlast that, and their second reads are not what it counts: an hour holds them.
		endpoints := NewEndpointCache(deliverEndpoints, kr, message.Rules{AllowHTTPTargets: true, AllowPrivateTargets: true})
		endpoints.TTL = time.Hour
		subscribers := NewSubscriberCache(deliverEndpoints).(*subscriberCache)
		subscribers.firstPages.TTL = time.Hour
		h.Endpoints, h.Subscribers = endpoints, subscribers
		h.Producer = queue.NewProducer(sq, queueURL)
		h.Queue, h.QueueURL = sq, queueURL
	})
	const deliveries = fanOuts*3 + directs
	// The event source mapping's part: receive, invoke, delete what was not handed back.
	deadline := time.Now().Add(2 * time.Minute)
	for pushes.Load() < deliveries && time.Now().Before(deadline) {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		var ev events.SQSEvent
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body)})
		}
		if len(ev.Records) == 0 {
			continue
		}
		resp, err := b.h.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, r := range ev.Records {
			if !failed[r.MessageId] {
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: aws.String(r.ReceiptHandle)})
			}
		}
		if len(del) > 0 {
			if _, err := sq.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: del}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := pushes.Load(); n != deliveries {
		t.Fatalf("%d pushes, want %d", n, deliveries)
	}
	writes := apiCount.writes() + deliverCount.writes()
	t.Logf("%d deliveries (%d fan-outs to 3 endpoints, %d to an endpoint by id): api %v, deliver %v: %.2f writes and %.3f reads per delivery",
		deliveries, fanOuts, directs, apiCount, deliverCount, float64(writes)/deliveries, float64(apiCount.reads()+deliverCount.reads())/deliveries)
	if writes > 3*deliveries {
		t.Errorf("%d writes for %d deliveries: more than 3 each", writes, deliveries)
	}
	// Reads are the caches' first reads: the api's of the direct endpoint, the deliver
	// function's of the four endpoints and of the tenant's listing. None is per delivery.
	if r := apiCount.reads(); r > 1 {
		t.Errorf("the api made %d reads, want at most 1 (the endpoint named by id, through its cache)", r)
	}
	if r := deliverCount.reads(); r > 5 {
		t.Errorf("the deliver function made %d reads, want at most 5 (4 endpoints and 1 tenant listing, through its caches)", r)
	}
}
