package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/store"
)

// capacityMeter asks every UpdateItem for its consumed capacity and keeps the last one's.
type capacityMeter struct {
	mu   sync.Mutex
	last float64
}

func (m *capacityMeter) client(t *testing.T) *dynamodb.Client {
	return dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("pushfn-capacity", func(ctx context.Context, in middleware.InitializeInput,
				next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok {
					u.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
				}
				out, md, err := next.HandleInitialize(ctx, in)
				if u, ok := out.Result.(*dynamodb.UpdateItemOutput); ok && u.ConsumedCapacity != nil {
					m.mu.Lock()
					m.last = aws.ToFloat64(u.ConsumedCapacity.CapacityUnits)
					m.mu.Unlock()
				}
				return out, md, err
			}), middleware.After)
		})
	})
}

func (m *capacityMeter) units() float64 { m.mu.Lock(); defer m.mu.Unlock(); return m.last }

// What keeping copies costs, in write units measured by DynamoDB Local: the result write of a
// delivered message carries no copy whatever its payload's size, and a failed one grows with its
// compressed copy only.
func TestIntegrationKeptCopyCost(t *testing.T) {
	t.Parallel()
	meter := &capacityMeter{}
	client := meter.client(t)
	table := awstest.Table(t, client)
	s := store.NewDynamoDB(client, table, awstest.RecordTTL)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	random := make([]byte, 128<<10)
	_, _ = rand.Read(random)
	for _, tc := range []struct {
		name    string
		payload string
	}{
		{"example message", `{"user_id":"1","message":"Hello"}`},
		{"256 KiB random", `"` + hex.EncodeToString(random) + `"`},
	} {
		units := map[message.Status]float64{}
		for _, status := range []message.Status{message.Delivered, message.Failed} {
			id := message.NewID(now)
			if err := s.Create(ctx, message.Record{ID: id, Fingerprint: "sha256:f", TargetHost: "hooks.example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Claim(ctx, id, store.Claim{Now: now, Lease: time.Minute, Token: "tok"}); err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf(`{"id":%q,"target":{"url":"https://hooks.example.com/push"},"payload":%s,"fingerprint":"sha256:f"}`, id, tc.payload)
			o := store.Outcome{Now: now, Status: status, Token: "tok", Attempt: &message.Attempt{At: now, StatusCode: 404}}
			if status == message.Failed {
				o.Keep = []byte(body)
			}
			if _, err := s.Finish(ctx, id, o); err != nil {
				t.Fatal(err)
			}
			units[status] = meter.units()
		}
		t.Logf("%s: result write %.0f write units delivered, %.0f failed (copy kept)", tc.name, units[message.Delivered], units[message.Failed])
		if units[message.Delivered] != 1 {
			t.Errorf("%s: the delivered result write cost %.1f write units, want 1: no copy on the happy path", tc.name, units[message.Delivered])
		}
		if tc.name == "256 KiB random" && units[message.Failed] < 100 {
			t.Errorf("%s: the failed result write cost %.1f write units, want the copy's size (over 100): was it kept?", tc.name, units[message.Failed])
		}
	}
}
