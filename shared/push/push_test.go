package push

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// The example of the Standard Webhooks specification.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func specKey(t *testing.T) []byte {
	t.Helper()
	key, err := ParseSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestSignMatchesSpecification(t *testing.T) {
	t.Parallel()
	key := specKey(t)
	if got := Sign([][]byte{key}, specID, specTimestamp, []byte(specBody)); got != specSignature {
		t.Fatalf("Sign = %q, want %q", got, specSignature)
	}
	other := []byte("another key")
	got := Sign([][]byte{other, key}, specID, specTimestamp, []byte(specBody))
	if want := " " + specSignature; len(got) <= len(want) || got[len(got)-len(want):] != want {
		t.Fatalf("Sign with two keys = %q, want the spec signature second", got)
	}
	if Sign(nil, specID, specTimestamp, []byte(specBody)) != "" {
		t.Fatal("Sign without keys is not empty")
	}
}

func TestParseSecretRefuses(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!"} {
		if _, err := ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", s)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	key := specKey(t)
	now := time.Unix(specTimestamp, 0).Add(time.Minute)
	ts := strconv.Itoa(specTimestamp)
	v := Verifier{Keys: [][]byte{[]byte("old key"), key}}
	tests := []struct {
		name      string
		v         Verifier
		id, ts    string
		signature string
		body      string
		now       time.Time
		want      error
	}{
		{"spec example", v, specID, ts, specSignature, specBody, now, nil},
		{"one of several signatures", v, specID, ts, "v1,AAAA " + specSignature, specBody, now, nil},
		{"body changed", v, specID, ts, specSignature, `{"test": 2432232315}`, now, ErrBadSignature},
		{"id changed", v, "msg_other", ts, specSignature, specBody, now, ErrBadSignature},
		{"wrong key", Verifier{Keys: [][]byte{[]byte("x")}}, specID, ts, specSignature, specBody, now, ErrBadSignature},
		{"other version", v, specID, ts, "v2," + specSignature[3:], specBody, now, ErrBadSignature},
		{"too old", v, specID, ts, specSignature, specBody, now.Add(10 * time.Minute), ErrStale},
		{"from the future", v, specID, ts, specSignature, specBody, time.Unix(specTimestamp, 0).Add(-10 * time.Minute), ErrStale},
		{"no signature", v, specID, ts, "", specBody, now, ErrNoSignature},
		{"bad timestamp", v, specID, "yesterday", specSignature, specBody, now, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.v.Verify(tt.id, tt.ts, tt.signature, []byte(tt.body), tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSendRequest(t *testing.T) {
	t.Parallel()
	key := specKey(t)
	got := make(chan *http.Request, 1)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		got <- r
	}))
	t.Cleanup(srv.Close)

	c := NewClient(Options{AllowPrivate: true, Keys: [][]byte{key}, Version: "1.2.3"})
	t.Cleanup(c.CloseIdleConnections)
	now := time.Unix(specTimestamp, 0)
	res := c.Send(context.Background(), Request{
		ID: specID, URL: srv.URL + "/push?x=1", Body: []byte(specBody), Now: now,
		Headers: map[string]string{"X-Tenant": "acme", "content-type": "text/plain"},
	})
	if res.Outcome != Delivered || res.Err != nil || res.StatusCode != 200 {
		t.Fatalf("Send = %+v", res)
	}
	r := <-got
	checks := map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "pushfn/1.2.3",
		"X-Tenant":          "acme",
		"Webhook-Id":        specID,
		"Webhook-Timestamp": strconv.Itoa(specTimestamp),
		"Webhook-Signature": specSignature,
	}
	for k, want := range checks {
		if v := r.Header.Values(k); len(v) != 1 || v[0] != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if r.Method != http.MethodPost || r.URL.RequestURI() != "/push?x=1" || string(body) != specBody {
		t.Errorf("request %s %s %q", r.Method, r.URL.RequestURI(), body)
	}
	if err := (Verifier{Keys: [][]byte{key}}).Verify(r.Header.Get(HeaderID), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, now); err != nil {
		t.Errorf("Verify of what was received: %v", err)
	}
}

func TestSendUsesHTTP2WhereOffered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		http2 bool
		want  int
		conns int32 // connections three pushes take: one more for HTTP/2, whose first is refused
	}{
		{"offered", true, 2, 2},
		{"not offered", false, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			protos := make(chan int, 3)
			var conns atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { protos <- r.ProtoMajor }))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.EnableHTTP2 = tt.http2
			srv.StartTLS()
			t.Cleanup(srv.Close)
			c := NewClient(Options{AllowPrivate: true, RootCAs: trusting(srv)})
			t.Cleanup(c.CloseIdleConnections)
			for range 3 {
				if res := c.Send(context.Background(), Request{ID: "msg_x", URL: srv.URL, Body: []byte(`{}`), Now: time.Now()}); res.Outcome != Delivered {
					t.Fatalf("Send = %+v", res)
				}
				if got := <-protos; got != tt.want {
					t.Fatalf("request arrived over HTTP/%d, want HTTP/%d", got, tt.want)
				}
			}
			if got := conns.Load(); got != tt.conns {
				t.Fatalf("three pushes took %d connections, want %d", got, tt.conns)
			}
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		t.Cleanup(srv.Close)
		c := NewClient(Options{AllowPrivate: true})
		t.Cleanup(c.CloseIdleConnections)
		if res := c.Send(context.Background(), Request{ID: "msg_x", URL: srv.URL, Body: []byte(`{}`), Now: time.Now()}); res.Outcome == Delivered || res.Err == nil {
			t.Fatalf("Send to an untrusted certificate = %+v", res)
		}
	})
}

func TestSendClassifies(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		header     http.Header
		want       Outcome
		retryAfter time.Duration
	}{
		{"200", 200, nil, Delivered, 0},
		{"204", 204, nil, Delivered, 0},
		{"301 not followed", 301, http.Header{"Location": {"/elsewhere"}}, Permanent, 0},
		{"400", 400, nil, Permanent, 0},
		{"404", 404, nil, Permanent, 0},
		{"410", 410, nil, Permanent, 0},
		{"408", 408, nil, Retryable, 0},
		{"425", 425, nil, Retryable, 0},
		{"429 with seconds", 429, http.Header{"Retry-After": {"120"}}, Retryable, 2 * time.Minute},
		{"503 with date", 503, http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, Retryable, 90 * time.Second},
		{"500", 500, nil, Retryable, 0},
		{"429 with garbage", 429, http.Header{"Retry-After": {"soon"}}, Retryable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) > 1 {
					t.Errorf("a second request reached the target: %s", r.URL)
				}
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write(make([]byte, 100<<10)) // longer than the drain limit
			}))
			t.Cleanup(srv.Close)
			c := NewClient(Options{AllowPrivate: true})
			t.Cleanup(c.CloseIdleConnections)
			res := c.Send(context.Background(), Request{ID: "msg_x", URL: srv.URL, Body: []byte(`{}`), Now: now})
			if res.Outcome != tt.want || res.StatusCode != tt.status || res.RetryAfter != tt.retryAfter {
				t.Fatalf("Send = %+v, want %v status %d retry after %s", res, tt.want, tt.status, tt.retryAfter)
			}
			if (tt.want == Delivered) != (res.Err == nil) {
				t.Fatalf("Err = %v for %v", res.Err, res.Outcome)
			}
			if res.Err != nil && !errors.Is(res.Err, ErrStatus) {
				t.Fatalf("Err = %v, want ErrStatus", res.Err)
			}
		})
	}
}

func TestSendTransportFailures(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-stop
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(stop) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()

	tests := []struct {
		name string
		url  string
		want Outcome
	}{
		{"timeout", hang.URL, Retryable},
		{"closed port", closed, Retryable},
		{"not a URL", "::nope", Permanent},
		{"ftp", "ftp://example.com/x", Permanent},
	}
	c := NewClient(Options{AllowPrivate: true})
	t.Cleanup(c.CloseIdleConnections)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			res := c.Send(ctx, Request{ID: "msg_x", URL: tt.url, Body: []byte(`{}`), Now: time.Now()})
			if res.Outcome != tt.want || res.Err == nil || res.StatusCode != 0 {
				t.Fatalf("Send = %+v, want %v with an error", res, tt.want)
			}
		})
	}
}

func TestSendRefusesBlockedAddresses(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	urls := []string{
		"http://localhost:" + port + "/", // a name that resolves to loopback
		srv.URL,                          // a loopback literal
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://10.0.0.1:" + port + "/",
	}
	c := NewClient(Options{})
	t.Cleanup(c.CloseIdleConnections)
	for _, u := range urls {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			res := c.Send(ctx, Request{ID: "msg_x", URL: u, Body: []byte(`{}`), Now: time.Now()})
			if res.Outcome != Permanent || !errors.Is(res.Err, ErrBlocked) {
				t.Fatalf("Send(%s) = %+v, want permanent ErrBlocked", u, res)
			}
		})
	}
	t.Run("allowed when private targets are", func(t *testing.T) {
		t.Parallel()
		open := NewClient(Options{AllowPrivate: true})
		t.Cleanup(open.CloseIdleConnections)
		res := open.Send(context.Background(), Request{ID: "msg_x", URL: "http://localhost:" + port + "/", Body: []byte(`{}`), Now: time.Now()})
		if res.Outcome != Delivered {
			t.Fatalf("Send with AllowPrivate = %+v", res)
		}
	})
	t.Cleanup(func() {
		if n := hits.Load(); n != 1 {
			t.Errorf("target got %d requests, want only the allowed one", n)
		}
	})
}

// fakeDNS returns a resolver whose every A query answers ip, as a rebinding or hostile DNS
// server would, and whose AAAA queries answer nothing.
func fakeDNS(t *testing.T, ip netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			i := 12
			for i < n && q[i] != 0 { // the question's name, label by label
				i += int(q[i]) + 1
			}
			if i+5 > n {
				continue
			}
			end := i + 5 // past the name's zero byte, type and class
			resp := append([]byte(nil), q[:end]...)
			resp[2], resp[3] = 0x81, 0x80                              // a response, recursion desired and available
			binary.BigEndian.PutUint16(resp[4:], 1)                    // one question
			binary.BigEndian.PutUint16(resp[6:], 0)                    // answers, set below
			binary.BigEndian.PutUint32(resp[8:], 0)                    // no authority or additional records
			if qtype := binary.BigEndian.Uint16(q[i+1:]); qtype == 1 { // A
				binary.BigEndian.PutUint16(resp[6:], 1)
				resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // the question's name, A, IN, TTL 60, 4 bytes
				a := ip.As4()
				resp = append(resp, a[:]...)
			}
			_, _ = pc.WriteTo(resp, addr)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func TestSendRefusesNamesResolvingToBlockedAddresses(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	tests := []struct {
		name         string
		ip           string
		allowPrivate bool
		blocked      bool
	}{
		{"metadata address", "169.254.169.254", false, true},
		{"loopback", "127.0.0.1", false, true},
		{"private", "10.1.2.3", false, true},
		{"loopback allowed for local runs", "127.0.0.1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewClient(Options{AllowPrivate: tt.allowPrivate, Resolver: fakeDNS(t, netip.MustParseAddr(tt.ip))})
			t.Cleanup(c.CloseIdleConnections)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			res := c.Send(ctx, Request{ID: "msg_x", URL: "http://hooks.pushfn.test:" + port + "/", Body: []byte(`{}`), Now: time.Now()})
			if got := errors.Is(res.Err, ErrBlocked); got != tt.blocked {
				t.Fatalf("Send = %+v, blocked %v, want %v", res, got, tt.blocked)
			}
			if tt.blocked && res.Outcome != Permanent {
				t.Fatalf("Send = %+v, want permanent", res)
			}
			if !tt.blocked && res.Outcome != Delivered {
				t.Fatalf("Send = %+v, want delivered", res)
			}
		})
	}
	t.Cleanup(func() {
		if n := hits.Load(); n != 1 {
			t.Errorf("target got %d requests, want only the allowed one", n)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":    0,
		"0":   0,
		"-5":  0,
		"30":  30 * time.Second,
		"abc": 0,
		now.Add(time.Hour).Format(http.TimeFormat):  time.Hour,
		now.Add(-time.Hour).Format(http.TimeFormat): 0,
	}
	for v, want := range tests {
		if got := RetryAfter(v, now); got != want {
			t.Errorf("RetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[Outcome]string{Delivered: "delivered", Retryable: "retryable", Permanent: "permanent", 0: "outcome(0)"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q", int(o), o.String())
		}
	}
}

// trusting returns the roots that trust srv's certificate.
func trusting(srv *httptest.Server) *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return roots
}
