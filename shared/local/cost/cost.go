// Package cost turns what a measured workload used (function durations, API Gateway, SQS and
// DynamoDB requests, stored bytes) into what it would cost in AWS per million pushes, from a
// price table kept in the code with the date it was read.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package cost

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Prices are AWS's public prices for one region, in US dollars, before free tiers and volume
// discounts (the first tier of each).
type Prices struct {
	Region string
	Read   string // the date the prices were read, YYYY-MM-DD
	Source string // where they were read

	LambdaGBSecond   float64 // arm64 duration, per GB-second
	LambdaRequest    float64 // per request
	HTTPAPIRequest   float64 // API Gateway HTTP API, per request of up to 512 KB
	SQSRequest       float64 // standard queue, per request of up to 64 KiB
	EventBridgeEvent float64 // PutEvents custom event, per 64 KiB chunk
	WriteRequestUnit float64 // DynamoDB on-demand, per write request unit (1 KB)
	ReadRequestUnit  float64 // DynamoDB on-demand, per read request unit (4 KB strongly consistent)
	WCUHour          float64 // DynamoDB provisioned, per write capacity unit-hour
	RCUHour          float64 // DynamoDB provisioned, per read capacity unit-hour
	StorageGBMonth   float64 // DynamoDB Standard table class, per GB-month

	SNSHTTP                   float64 // Amazon SNS: a publish and its HTTP delivery, per message
	EventBridgeAPIDestination float64 // EventBridge: an event put and its API destination invocation
}

// USEast1 is the price table pushfn cost uses: us-east-1, arm64, Standard table class.
var USEast1 = Prices{
	Region: "us-east-1",
	Read:   "2026-12-02",
	Source: "aws.amazon.com/lambda/pricing, /api-gateway/pricing, /sqs/pricing, /dynamodb/pricing, /sns/pricing, /eventbridge/pricing",

	LambdaGBSecond:   0.0000133334,
	LambdaRequest:    0.20 / 1e6,
	HTTPAPIRequest:   1.00 / 1e6,
	SQSRequest:       0.40 / 1e6,
	EventBridgeEvent: 1.00 / 1e6,
	WriteRequestUnit: 0.625 / 1e6,
	ReadRequestUnit:  0.125 / 1e6,
	WCUHour:          0.00065,
	RCUHour:          0.00013,
	StorageGBMonth:   0.25,

	SNSHTTP:                   (0.50 + 0.60) / 1e6,
	EventBridgeAPIDestination: (1.00 + 0.20) / 1e6,
}

// Function is what one function used during the workload.
type Function struct {
	Name        string
	MemoryMB    int
	Invocations int
	Billed      time.Duration // the sum of the invocations' billed durations
}

// GBSeconds returns the function's billed duration at its memory size.
func (f Function) GBSeconds() float64 {
	return f.Billed.Seconds() * float64(f.MemoryMB) / 1024
}

// Usage is what a workload used, measured.
type Usage struct {
	Pushes            int           // messages delivered: the unit costs are given per million of
	Elapsed           time.Duration // from the first request to the last message final
	APIRequests       int           // API Gateway requests, each up to 512 KB
	Functions         []Function
	SQSRequests       int     // billed SQS requests (64 KiB chunks), the event source mapping's included
	EventBridgeEvents int     // billed PutEvents entries (64 KiB chunks)
	WriteUnits        float64 // DynamoDB write request units
	ReadUnits         float64 // DynamoDB read request units
	ItemBytes         float64 // DynamoDB bytes stored per push, with DynamoDB's 100-byte item overhead
	Retention         time.Duration
}

// Line is one service's cost per million pushes, in both table modes where they differ.
type Line struct {
	Service     string
	Detail      string  // what was measured, per push
	OnDemand    float64 // dollars per million pushes, on-demand table
	Provisioned float64 // dollars per million pushes, provisioned table
}

// Estimate is the cost of a Usage per million pushes.
type Estimate struct {
	Lines       []Line
	OnDemand    float64 // total
	Provisioned float64 // total
	Utilisation float64 // the provisioned capacity's target utilisation
	WCU, RCU    float64 // provisioned capacity at the measured rate
	Rate        float64 // pushes per second measured
}

// ErrNoPushes is returned for a Usage with no push to divide by.
var ErrNoPushes = errors.New("cost: no push delivered")

// ErrUsage is returned for a Usage or utilisation Compute cannot price.
var ErrUsage = errors.New("cost: cannot price")

// monthHours is the hours of an average month (365.25 × 24 / 12), as AWS bills GB-months.
const monthHours = 730.5

// Compute prices u with p, per million pushes. Provisioned capacity is sized to the rate the
// workload ran at, at the utilisation given (auto scaling's target, such as 0.7): a steady load
// at that rate keeps it at that utilisation, so its cost per push is that of the capacity units
// consumed divided by the utilisation, whatever the rate.
func Compute(u Usage, p Prices, utilisation float64) (Estimate, error) {
	switch {
	case u.Pushes <= 0:
		return Estimate{}, ErrNoPushes
	case utilisation <= 0 || utilisation > 1:
		return Estimate{}, fmt.Errorf("%w: utilisation %v is not in (0, 1]", ErrUsage, utilisation)
	case u.Elapsed <= 0:
		return Estimate{}, fmt.Errorf("%w: elapsed time %v is not positive", ErrUsage, u.Elapsed)
	}
	per := 1e6 / float64(u.Pushes) // scale from the workload to a million pushes
	pushes := float64(u.Pushes)
	e := Estimate{Utilisation: utilisation, Rate: pushes / u.Elapsed.Seconds()}
	same := func(service, detail string, dollars float64) {
		e.Lines = append(e.Lines, Line{Service: service, Detail: detail, OnDemand: dollars, Provisioned: dollars})
	}
	same("API Gateway HTTP API", fmt.Sprintf("%.4f requests", float64(u.APIRequests)/pushes), float64(u.APIRequests)*p.HTTPAPIRequest*per)
	for _, f := range u.Functions {
		same("Lambda "+f.Name+" requests", fmt.Sprintf("%.4f invocations", float64(f.Invocations)/pushes),
			float64(f.Invocations)*p.LambdaRequest*per)
		same("Lambda "+f.Name+" duration", fmt.Sprintf("%.3f ms at %d MB", float64(f.Billed.Microseconds())/1000/pushes, f.MemoryMB),
			f.GBSeconds()*p.LambdaGBSecond*per)
	}
	same("SQS", fmt.Sprintf("%.3f requests", float64(u.SQSRequests)/pushes), float64(u.SQSRequests)*p.SQSRequest*per)
	if u.EventBridgeEvents > 0 {
		same("EventBridge", fmt.Sprintf("%.4f events", float64(u.EventBridgeEvents)/pushes), float64(u.EventBridgeEvents)*p.EventBridgeEvent*per)
	}
	// Provisioned: capacity units per second at the measured rate, over the utilisation.
	e.WCU = u.WriteUnits / u.Elapsed.Seconds() / utilisation
	e.RCU = u.ReadUnits / u.Elapsed.Seconds() / utilisation
	provisioned := func(units, hourly float64) float64 {
		return units / utilisation / 3600 * hourly * per
	}
	e.Lines = append(e.Lines,
		Line{Service: "DynamoDB writes", Detail: fmt.Sprintf("%.3f write units", u.WriteUnits/pushes),
			OnDemand: u.WriteUnits * p.WriteRequestUnit * per, Provisioned: provisioned(u.WriteUnits, p.WCUHour)},
		Line{Service: "DynamoDB reads", Detail: fmt.Sprintf("%.3f read units", u.ReadUnits/pushes),
			OnDemand: u.ReadUnits * p.ReadRequestUnit * per, Provisioned: provisioned(u.ReadUnits, p.RCUHour)},
	)
	months := u.Retention.Hours() / monthHours
	same("DynamoDB storage", fmt.Sprintf("%.0f bytes for %s", u.ItemBytes, days(u.Retention)), u.ItemBytes*1e6/(1<<30)*months*p.StorageGBMonth)
	for _, l := range e.Lines {
		e.OnDemand += l.OnDemand
		e.Provisioned += l.Provisioned
	}
	return e, nil
}

func days(d time.Duration) string {
	return fmt.Sprintf("%g days", d.Hours()/24)
}

// ItemOverhead is the bytes DynamoDB adds to each item it stores and bills.
const ItemOverhead = 100

// ItemSize returns the size of item as DynamoDB counts it for storage and request units: each
// attribute's name in UTF-8 bytes plus its value's size (strings and binaries their length,
// numbers about one byte per two significant digits plus one, booleans and nulls one byte, lists
// and maps three bytes plus their elements and one byte each).
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

// numberSize is DynamoDB's size of a number: one byte per two significant digits, plus one.
func numberSize(s string) int {
	digits := 0
	for _, r := range strings.TrimLeft(strings.TrimLeft(s, "-"), "0.") {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	return (digits+1)/2 + 1
}

// Print writes e as a table: each service's cost per million pushes in both table modes, the
// totals, and the two managed alternatives for comparison.
func Print(w io.Writer, e Estimate, p Prices) {
	fmt.Fprintf(w, "cost per million pushes, USD       %-28s %12s %12s\n", "measured per push", "on-demand", "provisioned")
	for _, l := range e.Lines {
		fmt.Fprintf(w, "  %-33s %-28s %12.4f %12.4f\n", l.Service, l.Detail, l.OnDemand, l.Provisioned)
	}
	fmt.Fprintf(w, "  %-33s %-28s %12.4f %12.4f\n", "total", "", e.OnDemand, e.Provisioned)
	fmt.Fprintf(w, "  %-33s %-28s %12.4f\n", "Amazon SNS HTTP delivery", "publish + HTTP delivery", p.SNSHTTP*1e6)
	fmt.Fprintf(w, "  %-33s %-28s %12.4f\n", "EventBridge API destinations", "event + invocation", p.EventBridgeAPIDestination*1e6)
	fmt.Fprintf(w, "provisioned: capacity sized to this run's rate (%.0f pushes/s: %.1f WCU, %.1f RCU) at %.0f %% utilisation;\n",
		e.Rate, e.WCU, e.RCU, 100*e.Utilisation)
	fmt.Fprintln(w, "a steady load at any rate costs the same per push; idle hours and the 1-unit minimum add to it.")
}
