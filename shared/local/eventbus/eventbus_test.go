package eventbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"

	"github.com/pushfn/pushfn/shared/opevent"
)

// client is the SDK's EventBridge client pointed at srv, as AWS_ENDPOINT_URL_EVENTBRIDGE points
// the functions' at a local run's server.
func client(t *testing.T, srv *Server) *eventbridge.Client {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return eventbridge.New(eventbridge.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(hs.URL),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// What the SDK's client sends decodes into the events it carries, answered as EventBridge
// answers: an EventId per entry, FailedEntryCount 0.
func TestServerDecodesTheSDKsPutEvents(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	srv := &Server{Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	c := client(t, srv)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	out, err := c.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{Source: aws.String("pushfn"), DetailType: aws.String("pushfn.delivery.failed"), Detail: aws.String(`{"message_id":"msg_1","attempts":3}`),
			EventBusName: aws.String("pushfn-local"), Time: aws.Time(at), Resources: []string{"arn:aws:lambda:us-east-1:1:function:x"}},
		{Source: aws.String("pushfn"), DetailType: aws.String("pushfn.endpoint.disabled"), Detail: aws.String(`{"endpoint_id":"ep_1"}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 0 || len(out.Entries) != 2 || aws.ToString(out.Entries[0].EventId) == "" || aws.ToString(out.Entries[1].EventId) == "" {
		t.Fatalf("answer %+v, want two event ids and no failure", out)
	}
	got := srv.Events()
	if len(got) != 2 || srv.Total() != 2 {
		t.Fatalf("kept %d events (total %d), want 2", len(got), srv.Total())
	}
	first := got[0]
	if first.ID != aws.ToString(out.Entries[0].EventId) || first.Bus != "pushfn-local" || first.Source != "pushfn" ||
		first.DetailType != "pushfn.delivery.failed" || string(first.Detail) != `{"message_id":"msg_1","attempts":3}` ||
		!first.Time.Equal(at) || len(first.Resources) != 1 {
		t.Errorf("first event %+v", first)
	}
	if got[1].Bus != "default" || got[1].Time.IsZero() {
		t.Errorf("second event %+v, want the default bus and the time it was received", got[1])
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per event:\n%s", len(lines), logs.String())
	}
	var line struct {
		Msg        string          `json:"msg"`
		DetailType string          `json:"detail_type"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil || line.Msg != "operational event" ||
		line.DetailType != "pushfn.delivery.failed" || string(line.Detail) != `{"message_id":"msg_1","attempts":3}` {
		t.Errorf("log line %s (%v), want the event with its detail as JSON", lines[0], err)
	}
}

// An entry EventBridge would fail is failed alone, with an error code; an opevent.Batcher on
// the real client puts it again, then gives up, while the good entries arrive once.
func TestServerFailsBadEntriesAndTheBatcherRetries(t *testing.T) {
	t.Parallel()
	srv := &Server{}
	c := client(t, srv)
	out, err := c.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{Source: aws.String("pushfn"), DetailType: aws.String("x"), Detail: aws.String(`[1]`)},
		{Source: aws.String("pushfn"), DetailType: aws.String("x"), Detail: aws.String(`{}`)},
		{DetailType: aws.String("x"), Detail: aws.String(`{}`)},
		{Source: aws.String("pushfn"), Detail: aws.String(`{}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{}
	for _, e := range out.Entries {
		codes = append(codes, aws.ToString(e.ErrorCode))
	}
	if out.FailedEntryCount != 3 || fmt.Sprint(codes) != "[MalformedDetail  InvalidArgument InvalidArgument]" {
		t.Fatalf("FailedEntryCount %d, codes %q; want 3 failed: MalformedDetail, -, InvalidArgument, InvalidArgument", out.FailedEntryCount, codes)
	}

	b := opevent.New(c, "pushfn-local", nil)
	for i := range 12 {
		b.Publish(opevent.Event{DetailType: opevent.DeliveryFailed, Detail: map[string]int{"n": i}})
	}
	b.Flush(context.Background())
	if st := b.Stats(); st.Sent != 12 || st.Failed != 0 {
		t.Errorf("batcher stats %+v, want 12 sent", st)
	}
	if n := srv.Total(); n != 13 {
		t.Errorf("the server accepted %d events, want 13 (1 + 12)", n)
	}
}

// A request that is not a PutEvents call of 1 to 10 entries is refused as a whole, with an AWS
// JSON error naming what is wrong.
func TestServerRefusesBadRequests(t *testing.T) {
	t.Parallel()
	entries := func(n int) string {
		e := make([]string, n)
		for i := range e {
			e[i] = `{"Source":"pushfn","DetailType":"x","Detail":"{}"}`
		}
		return `{"Entries":[` + strings.Join(e, ",") + `]}`
	}
	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		wantStatus int
		wantType   string
		wantIn     string
	}{
		{name: "GET", method: http.MethodGet, target: target, wantStatus: 405, wantType: "UnknownOperationException", wantIn: "method"},
		{name: "no target", method: http.MethodPost, body: entries(1), wantStatus: 400, wantType: "UnknownOperationException", wantIn: "X-Amz-Target"},
		{name: "another operation", method: http.MethodPost, target: "AWSEvents.ListRules", body: `{}`, wantStatus: 400, wantType: "UnknownOperationException", wantIn: "X-Amz-Target"},
		{name: "not JSON", method: http.MethodPost, target: target, body: `Entries=1`, wantStatus: 400, wantType: "SerializationException", wantIn: "body"},
		{name: "two objects", method: http.MethodPost, target: target, body: entries(1) + entries(1), wantStatus: 400, wantType: "SerializationException", wantIn: "body"},
		{name: "entries of the wrong type", method: http.MethodPost, target: target, body: `{"Entries":{"Source":"x"}}`, wantStatus: 400, wantType: "SerializationException", wantIn: "body"},
		{name: "no entries", method: http.MethodPost, target: target, body: `{"Entries":[]}`, wantStatus: 400, wantType: "ValidationException", wantIn: "Entries"},
		{name: "eleven entries", method: http.MethodPost, target: target, body: entries(11), wantStatus: 400, wantType: "ValidationException", wantIn: "Entries"},
		{name: "too large", method: http.MethodPost, target: target, body: `{"Entries":[{"Source":"` + strings.Repeat("x", MaxRequestBytes) + `"}]}`, wantStatus: 413, wantType: "ValidationException", wantIn: "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &Server{}
			req := httptest.NewRequest(tt.method, "/", strings.NewReader(tt.body))
			if tt.target != "" {
				req.Header.Set("X-Amz-Target", tt.target)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			var e struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("answer %d %q: %v", rec.Code, rec.Body.String(), err)
			}
			if rec.Code != tt.wantStatus || e.Type != tt.wantType || rec.Header().Get("X-Amzn-ErrorType") != tt.wantType || !strings.Contains(e.Message, tt.wantIn) {
				t.Errorf("answer %d %+v, want %d %s naming %s", rec.Code, e, tt.wantStatus, tt.wantType, tt.wantIn)
			}
			if srv.Total() != 0 {
				t.Errorf("%d events kept from a refused request", srv.Total())
			}
		})
	}
}

// The SDK reports a refused request as the error the server named.
func TestSDKSeesTheServersError(t *testing.T) {
	t.Parallel()
	c := client(t, &Server{})
	entries := make([]types.PutEventsRequestEntry, 11)
	for i := range entries {
		entries[i] = types.PutEventsRequestEntry{Source: aws.String("pushfn"), DetailType: aws.String("x"), Detail: aws.String(`{}`)}
	}
	_, err := c.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: entries})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("PutEvents of 11 entries: %v, want a ValidationException", err)
	}
}

// The server keeps the last Keep events, oldest first, and counts them all.
func TestServerKeepsTheLastEvents(t *testing.T) {
	t.Parallel()
	srv := &Server{Keep: 3}
	c := client(t, srv)
	for i := range 5 {
		_, err := c.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
			{Source: aws.String("pushfn"), DetailType: aws.String("x"), Detail: aws.String(fmt.Sprintf(`{"n":%d}`, i))}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, e := range srv.Events() {
		got = append(got, string(e.Detail))
	}
	if fmt.Sprint(got) != `[{"n":2} {"n":3} {"n":4}]` || srv.Total() != 5 {
		t.Errorf("kept %v of %d, want the last 3 of 5, oldest first", got, srv.Total())
	}
}

// Whatever the body, the server answers 200 or a 4xx with a JSON body, and keeps only events
// whose detail is a JSON object.
func FuzzServe(f *testing.F) {
	f.Add(`{"Entries":[{"Source":"pushfn","DetailType":"x","Detail":"{}"}]}`)
	f.Add(`{"Entries":[{"Source":"pushfn","DetailType":"x","Detail":"[]","Time":1.5e9}]}`)
	f.Add(`{"Entries":null}`)
	f.Add(`{"Entries":[{"Time":"soon"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		srv := &Server{}
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != 200 && (rec.Code < 400 || rec.Code > 499) || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer %d %q", rec.Code, rec.Body.String())
		}
		for _, e := range srv.Events() {
			if !json.Valid(e.Detail) || !strings.HasPrefix(strings.TrimSpace(string(e.Detail)), "{") {
				t.Fatalf("kept detail %q", e.Detail)
			}
		}
	})
}
