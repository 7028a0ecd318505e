package awstest

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// LossyHTTP is an aws.HTTPClient that forwards every request and, for the calls Lose picks,
// reads the service's answer, throws it away and reports a connection reset: the service applied
// the request but the caller never hears so, and the SDK's retry meets the state the first
// request made. It is safe for concurrent use.
type LossyHTTP struct {
	// Lose picks the calls whose answer is lost: op is the API operation ("PutItem"), n counts
	// that operation's calls from 1, retries included.
	Lose func(op string, n int) bool

	next  *http.Client
	mu    sync.Mutex
	calls map[string]int
	lost  atomic.Int64
}

// NewLossyHTTP returns a LossyHTTP forwarding through a client of its own.
func NewLossyHTTP(lose func(op string, n int) bool) *LossyHTTP {
	return &LossyHTTP{Lose: lose, next: &http.Client{}, calls: map[string]int{}}
}

// Do forwards req and loses the answer when Lose says so.
func (c *LossyHTTP) Do(req *http.Request) (*http.Response, error) {
	// The JSON protocols name the operation in X-Amz-Target: "DynamoDB_20120810.PutItem".
	target := req.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	c.mu.Lock()
	c.calls[op]++
	n := c.calls[op]
	c.mu.Unlock()
	resp, err := c.next.Do(req)
	if err != nil || c.Lose == nil || !c.Lose(op, n) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	c.lost.Add(1)
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

// Lost returns how many answers were lost.
func (c *LossyHTTP) Lost() int { return int(c.lost.Load()) }

// Calls returns how many calls of op were made.
func (c *LossyHTTP) Calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// LossyDynamoDB returns a client for the DynamoDB emulator whose requests go through lossy.
func LossyDynamoDB(t testing.TB, lossy *LossyHTTP) *dynamodb.Client {
	return dynamodb.NewFromConfig(Config(t), func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.HTTPClient = lossy
	})
}
