package awsproxy_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushfn/pushfn/shared/local/awsproxy"
)

// The proxy forwards each request to its upstream, unchanged, and counts it under its operation
// with its sizes in 64 KiB chunks.
func TestProxyCountsByOperation(t *testing.T) {
	t.Parallel()
	answer := strings.Repeat("a", 70<<10) // two chunks
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") == "AmazonSQS.ReceiveMessage" {
			_, _ = io.WriteString(w, answer)
			return
		}
		w.Header().Set("X-Got", r.Header.Get("X-Amz-Target")+" "+string(body)+" "+r.Host)
	}))
	defer up.Close()
	p, err := awsproxy.Start("SQS", up.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	send := func(target, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/", strings.NewReader(body))
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := send("AmazonSQS.SendMessageBatch", `{"Entries":[]}`)
	if got, want := resp.Header.Get("X-Got"), `AmazonSQS.SendMessageBatch {"Entries":[]} `+strings.TrimPrefix(p.URL(), "http://"); got != want {
		t.Errorf("upstream got %q, want %q (target, body, and the Host the client signed)", got, want)
	}
	send("AmazonSQS.SendMessageBatch", strings.Repeat("b", 64<<10+1))
	send("AmazonSQS.ReceiveMessage", "{}")
	send("", "")
	want := map[string]awsproxy.Count{
		"SQS.SendMessageBatch": {Requests: 2, Bytes: 14 + 64<<10 + 1, Chunks64K: 1 + 2},
		"SQS.ReceiveMessage":   {Requests: 1, Bytes: 2 + 70<<10, Chunks64K: 2},
		"SQS.unknown":          {Requests: 1, Chunks64K: 1},
	}
	got := p.Counts()
	if len(got) != len(want) {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s: %+v, want %+v", op, got[op], w)
		}
	}
}

func TestOperation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		target, url, want string
	}{
		{"DynamoDB_20120810.PutItem", "/", "PutItem"},
		{"AWSEvents.PutEvents", "/", "PutEvents"},
		{"", "/?Action=SendMessage&Version=2012-11-05", "SendMessage"},
		{"", "/", "unknown"},
		{"NoDot", "/", "NoDot"},
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://aws.invalid"+tc.url, nil)
		if tc.target != "" {
			r.Header.Set("X-Amz-Target", tc.target)
		}
		if got := awsproxy.Operation(r); got != tc.want {
			t.Errorf("Operation(%q, %q) = %q, want %q", tc.target, tc.url, got, tc.want)
		}
	}
}

func TestStartRefusesABadUpstream(t *testing.T) {
	t.Parallel()
	for _, up := range []string{"", "127.0.0.1:4566", "ftp://127.0.0.1:21", "http://"} {
		p, err := awsproxy.Start("SQS", up)
		if !errors.Is(err, awsproxy.ErrUpstream) {
			t.Errorf("Start(%q) = %v, want ErrUpstream", up, err)
		}
		if p != nil {
			_ = p.Close()
		}
	}
}
