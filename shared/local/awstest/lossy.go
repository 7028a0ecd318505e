package awstest

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// LossyHTTP is an aws.HTTPClient that forwards every request and, for the calls its lose
// function picks, reads the service's whole answer, throws it away and reports a connection
// reset: the service applied the request but the caller never hears so, and the SDK's retry
// meets the state the first request made. It is safe for concurrent use.
type LossyHTTP struct {
	lose func(op string, n int) bool
	next *http.Client

	mu    sync.Mutex
	calls map[string]int // operation -> requests made, retries included
	lost  int
}

// NewLossyHTTP returns a LossyHTTP whose lose picks the calls that lose their answer: op is the
// API operation ("PutItem", "SendMessageBatch"), n counts that operation's calls through this
// client from 1, retries included. lose may be called from several goroutines at once. The
// client's idle connections are closed when t ends.
func NewLossyHTTP(t testing.TB, lose func(op string, n int) bool) *LossyHTTP {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &LossyHTTP{lose: lose, next: &http.Client{Transport: tr}, calls: map[string]int{}}
}

// LoseCalls returns a lose function for NewLossyHTTP that loses the answers of the given calls
// of op, counted from 1 with retries included: LoseCalls("UpdateItem", 1, 3) loses a claim's
// first answer and, after the SDK's retry (call 2), the next write's first answer.
func LoseCalls(op string, calls ...int) func(string, int) bool {
	return func(got string, n int) bool {
		if got != op {
			return false
		}
		for _, c := range calls {
			if c == n {
				return true
			}
		}
		return false
	}
}

// Do forwards req and loses the answer when the lose function says so.
func (c *LossyHTTP) Do(req *http.Request) (*http.Response, error) {
	// The JSON protocols name the operation in X-Amz-Target: "DynamoDB_20120810.PutItem".
	target := req.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	c.mu.Lock()
	c.calls[op]++
	n := c.calls[op]
	c.mu.Unlock()
	resp, err := c.next.Do(req)
	if err != nil || c.lose == nil || !c.lose(op, n) {
		return resp, err
	}
	// The whole answer arrived, so the request is certainly applied; the caller sees a reset.
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	c.mu.Lock()
	c.lost++
	c.mu.Unlock()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

// Lost returns how many answers were lost.
func (c *LossyHTTP) Lost() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// Calls returns how many calls of op were made, retries included.
func (c *LossyHTTP) Calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// LossyDynamoDB returns a client for the DynamoDB emulator whose requests go through lossy, with
// up to three tries per call as the SDK makes by default (the retry is what meets the lost
// write's result).
func LossyDynamoDB(t testing.TB, lossy *LossyHTTP) *dynamodb.Client {
	return dynamodb.NewFromConfig(Config(t), func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.RetryMaxAttempts = 3
		o.HTTPClient = lossy
	})
}
