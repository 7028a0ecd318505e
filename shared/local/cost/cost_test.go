package cost_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushfn/pushfn/shared/local/cost"
)

// prices are round figures, so that the expected costs can be worked out by hand.
var prices = cost.Prices{
	LambdaGBSecond: 0.00001, LambdaRequest: 0.2 / 1e6, HTTPAPIRequest: 1 / 1e6, SQSRequest: 0.4 / 1e6,
	EventBridgeEvent: 1 / 1e6, WriteRequestUnit: 0.5 / 1e6, ReadRequestUnit: 0.25 / 1e6,
	WCUHour: 0.0036, RCUHour: 0.00072, StorageGBMonth: 0.25, SNSHTTP: 1.1 / 1e6, EventBridgeAPIDestination: 1.2 / 1e6,
}

func TestCompute(t *testing.T) {
	t.Parallel()
	u := cost.Usage{
		Pushes: 1000, Elapsed: 10 * time.Second, APIRequests: 2,
		Functions: []cost.Function{
			{Name: "ApiFunction", MemoryMB: 512, Invocations: 2, Billed: 200 * time.Millisecond}, // 0.1 GB-s
			{Name: "DeliverFunction", MemoryMB: 1024, Invocations: 10, Billed: 5 * time.Second},  // 5 GB-s
		},
		SQSRequests: 1100, EventBridgeEvents: 10, WriteUnits: 3000, ReadUnits: 100,
		ItemBytes: 1 << 30 / 1e6, Retention: 730*time.Hour + 30*time.Minute, // a GB-month per million pushes
	}
	e, err := cost.Compute(u, prices, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	// Per million pushes: 1,000 times the workload's usage, at the prices above.
	want := map[string][2]float64{
		"API Gateway HTTP API":            {0.002, 0.002},   // 2,000 requests
		"Lambda ApiFunction requests":     {0.0004, 0.0004}, // 2,000 invocations
		"Lambda ApiFunction duration":     {0.001, 0.001},   // 100 GB-s
		"Lambda DeliverFunction requests": {0.002, 0.002},   // 10,000 invocations
		"Lambda DeliverFunction duration": {0.05, 0.05},     // 5,000 GB-s
		"SQS":                             {0.44, 0.44},     // 1.1 million requests
		"EventBridge":                     {0.01, 0.01},     // 10,000 events
		// 3 million write units: on demand, 1.5; provisioned at 50 %, 6,000,000 / 0.5 WCU-seconds,
		// 3,333 WCU-hours.
		"DynamoDB writes":  {1.5, 3e6 / 0.5 / 3600 * 0.0036},
		"DynamoDB reads":   {0.025, 1e5 / 0.5 / 3600 * 0.00072},
		"DynamoDB storage": {0.25, 0.25}, // a GB for a month
	}
	if len(e.Lines) != len(want) {
		t.Errorf("%d lines, want %d: %+v", len(e.Lines), len(want), e.Lines)
	}
	var onDemand, provisioned float64
	for _, l := range e.Lines {
		w, ok := want[l.Service]
		if !ok {
			t.Errorf("unexpected line %+v", l)
			continue
		}
		if !near(l.OnDemand, w[0]) || !near(l.Provisioned, w[1]) {
			t.Errorf("%s: %v on demand, %v provisioned; want %v, %v", l.Service, l.OnDemand, l.Provisioned, w[0], w[1])
		}
		onDemand += w[0]
		provisioned += w[1]
	}
	if !near(e.OnDemand, onDemand) || !near(e.Provisioned, provisioned) {
		t.Errorf("totals %v, %v; want %v, %v", e.OnDemand, e.Provisioned, onDemand, provisioned)
	}
	if !near(e.Rate, 100) || !near(e.WCU, 600) || !near(e.RCU, 20) {
		t.Errorf("rate %v, WCU %v, RCU %v; want 100 pushes/s, 600 and 20 units at 50 %%", e.Rate, e.WCU, e.RCU)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestComputeRefuses(t *testing.T) {
	t.Parallel()
	ok := cost.Usage{Pushes: 1, Elapsed: time.Second}
	for _, tc := range []struct {
		name        string
		u           cost.Usage
		utilisation float64
		want        error
	}{
		{"no push", cost.Usage{Elapsed: time.Second}, 0.7, cost.ErrNoPushes},
		{"no time", cost.Usage{Pushes: 1}, 0.7, cost.ErrUsage},
		{"no utilisation", ok, 0, cost.ErrUsage},
		{"above full", ok, 1.01, cost.ErrUsage},
	} {
		if _, err := cost.Compute(tc.u, prices, tc.utilisation); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestItemSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		item map[string]types.AttributeValue
		want int
	}{
		{"string", map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "msg_1"}}, 2 + 5},
		{"number", map[string]types.AttributeValue{"ttl": &types.AttributeValueMemberN{Value: "1767000000"}}, 3 + 6},
		{"small number", map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "-0.5"}}, 1 + 2},
		{"bool and null", map[string]types.AttributeValue{"a": &types.AttributeValueMemberBOOL{Value: true}, "b": &types.AttributeValueMemberNULL{Value: true}}, 2 + 2},
		{"binary", map[string]types.AttributeValue{"p": &types.AttributeValueMemberB{Value: make([]byte, 10)}}, 1 + 10},
		{"map", map[string]types.AttributeValue{"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"at": &types.AttributeValueMemberS{Value: "x"}}}}, 1 + 3 + 1 + 2 + 1},
		{"list", map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberS{Value: "ab"}, &types.AttributeValueMemberN{Value: "7"}}}}, 1 + 3 + (1 + 2) + (1 + 2)},
		{"sets", map[string]types.AttributeValue{"ss": &types.AttributeValueMemberSS{Value: []string{"a", "bc"}},
			"ns": &types.AttributeValueMemberNS{Value: []string{"12", "3"}}, "bs": &types.AttributeValueMemberBS{Value: [][]byte{{1, 2}}}}, 2 + 3 + 2 + 4 + 2 + 2},
	} {
		if got := cost.ItemSize(tc.item); got != tc.want {
			t.Errorf("%s: %d bytes, want %d", tc.name, got, tc.want)
		}
	}
}

func TestPrint(t *testing.T) {
	t.Parallel()
	e, err := cost.Compute(cost.Usage{Pushes: 1000, Elapsed: time.Second, SQSRequests: 1000}, cost.USEast1, 0.7)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cost.Print(&out, e, cost.USEast1)
	for _, want := range []string{"SQS", "total", "Amazon SNS HTTP delivery", "1.1000", "EventBridge API destinations", "1.2000", "70 % utilisation"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// The price table says where and when it was read, and holds a price for everything it prices.
func TestUSEast1IsComplete(t *testing.T) {
	t.Parallel()
	p := cost.USEast1
	if p.Region != "us-east-1" || p.Source == "" {
		t.Errorf("region %q, source %q", p.Region, p.Source)
	}
	if _, err := time.Parse(time.DateOnly, p.Read); err != nil {
		t.Errorf("read date %q: %v", p.Read, err)
	}
	for name, v := range map[string]float64{"LambdaGBSecond": p.LambdaGBSecond, "LambdaRequest": p.LambdaRequest,
		"HTTPAPIRequest": p.HTTPAPIRequest, "SQSRequest": p.SQSRequest, "EventBridgeEvent": p.EventBridgeEvent,
		"WriteRequestUnit": p.WriteRequestUnit, "ReadRequestUnit": p.ReadRequestUnit, "WCUHour": p.WCUHour,
		"RCUHour": p.RCUHour, "StorageGBMonth": p.StorageGBMonth, "SNSHTTP": p.SNSHTTP, "EventBridgeAPIDestination": p.EventBridgeAPIDestination} {
		if v <= 0 {
			t.Errorf("%s is %v", name, v)
		}
	}
}
