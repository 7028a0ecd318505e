package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// endpointView is what the endpoint routes answer, the secret included where a route shows it.
type endpointView struct {
	ID         string            `json:"id"`
	TenantID   string            `json:"tenant_id"`
	URL        string            `json:"url"`
	EventTypes []string          `json:"event_types"`
	Headers    map[string]string `json:"headers"`
	Disabled   bool              `json:"disabled"`
	Secret     string            `json:"secret"`
	Key        string            `json:"key"`
}

// testEndpointsE2E drives the endpoint routes through the real stack (API Gateway translation,
// the api function's binary, DynamoDB Local and its indexes): create, list across pages,
// patch, read and rotate the secret, delete.
func testEndpointsE2E(t *testing.T, s *e2eStack) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tenant := "e2e-" + strings.ToLower(s.table)
	var created []endpointView
	for i := range 7 {
		var e endpointView
		body := map[string]any{"url": fmt.Sprintf("https://hooks.example.com/%d", i), "tenant_id": tenant, "event_types": []string{"order.*"}}
		if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", body, &e); code != http.StatusCreated || e.ID == "" || !strings.HasPrefix(e.Secret, "whsec_") {
			t.Fatalf("create #%d: %d %+v", i, code, e)
		}
		created = append(created, e)
	}
	var other endpointView
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", map[string]any{"url": "https://hooks.example.com/other"}, &other); code != http.StatusCreated {
		t.Fatalf("create without a tenant: %d", code)
	}

	// Three pages of 3, 3 and 1, in creation order, none showing a secret.
	var ids []string
	path, pages := "/v1/endpoints?limit=3&tenant_id="+url.QueryEscape(tenant), 0
	for {
		var page struct {
			Endpoints  []endpointView `json:"endpoints"`
			NextCursor *string        `json:"next_cursor"`
		}
		if code := s.do(t, ctx, http.MethodGet, path, nil, &page); code != http.StatusOK {
			t.Fatalf("list page %d: %d", pages+1, code)
		}
		pages++
		for _, e := range page.Endpoints {
			ids = append(ids, e.ID)
			if e.Secret != "" || e.TenantID != tenant {
				t.Errorf("listed %+v: want the tenant's, without a secret", e)
			}
		}
		if page.NextCursor == nil {
			break
		}
		path = "/v1/endpoints?limit=3&tenant_id=" + url.QueryEscape(tenant) + "&cursor=" + url.QueryEscape(*page.NextCursor)
	}
	// Listings are in id order: creation order, to the millisecond.
	var want []string
	for _, e := range created {
		want = append(want, e.ID)
	}
	slices.Sort(want)
	if !slices.Equal(ids, want) || pages != 3 {
		t.Errorf("%d pages listing %v, want 3 listing %v", pages, ids, want)
	}
	// Every endpoint (other subtests add theirs to the same table): ours among them, in order.
	var all struct {
		Endpoints []endpointView `json:"endpoints"`
	}
	if code := s.do(t, ctx, http.MethodGet, "/v1/endpoints?limit=100", nil, &all); code != http.StatusOK {
		t.Errorf("every endpoint: %d", code)
	}
	var listed []string
	for _, e := range all.Endpoints {
		if slices.Contains(want, e.ID) || e.ID == other.ID {
			listed = append(listed, e.ID)
		}
	}
	if !slices.Equal(listed, slices.Sorted(slices.Values(append(slices.Clone(want), other.ID)))) {
		t.Errorf("every endpoint lists %v of ours, want %v and %s", listed, want, other.ID)
	}

	ep := created[0]
	var patched endpointView
	if code := s.do(t, ctx, http.MethodPatch, "/v1/endpoints/"+ep.ID, map[string]any{"event_types": nil, "headers": map[string]any{"X-Team": "billing"}, "disabled": true}, &patched); code != http.StatusOK ||
		len(patched.EventTypes) != 0 || patched.Headers["X-Team"] != "billing" || !patched.Disabled || patched.URL != ep.URL {
		t.Errorf("patch: %d %+v", code, patched)
	}
	var got endpointView
	if code := s.do(t, ctx, http.MethodGet, "/v1/endpoints/"+ep.ID, nil, &got); code != http.StatusOK || !got.Disabled || got.Secret != "" {
		t.Errorf("get after patch: %d %+v", code, got)
	}

	var secret, rotated, after endpointView
	s.do(t, ctx, http.MethodGet, "/v1/endpoints/"+ep.ID+"/secret", nil, &secret)
	if secret.Key != ep.Secret {
		t.Errorf("secret route: %q, want the created secret", secret.Key)
	}
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints/"+ep.ID+"/secret/rotate", nil, &rotated); code != http.StatusOK || rotated.Key == ep.Secret || !strings.HasPrefix(rotated.Key, "whsec_") {
		t.Errorf("rotate: %d %+v", code, rotated)
	}
	s.do(t, ctx, http.MethodGet, "/v1/endpoints/"+ep.ID+"/secret", nil, &after)
	if after.Key != rotated.Key {
		t.Errorf("secret after rotation: %q, want %q", after.Key, rotated.Key)
	}

	if code := s.do(t, ctx, http.MethodDelete, "/v1/endpoints/"+ep.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("delete: %d, want 204", code)
	}
	if code := s.do(t, ctx, http.MethodGet, "/v1/endpoints/"+ep.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("get after delete: %d, want 404", code)
	}
	if code := s.do(t, ctx, http.MethodDelete, "/v1/endpoints/"+ep.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", code)
	}

	// No secret reached pushfn run's log or the functions' lines.
	logs := s.logs.String()
	for _, e := range append(created, other, rotated) {
		for _, v := range []string{e.Secret, e.Key} {
			if v != "" && strings.Contains(logs, strings.TrimPrefix(v, "whsec_")) {
				t.Errorf("a secret is in pushfn run's log")
			}
		}
	}
}

// readmeEndpointID is the id the README's Endpoints section shows; the test puts the created
// endpoint's id in its place.
var readmeEndpointID = regexp.MustCompile(`ep_[0-9a-z]{26}`)

// runEndpointExamples runs the commands of the README's "## Endpoints" section in README order
// against the stack at api, with API set to it and EP to the id the README's create answered,
// and checks each answer against what the README documents after the command: status line,
// headers, error code, details fields, and every top-level field the documented body shows.
func runEndpointExamples(t *testing.T, ctx context.Context, readme, api string) {
	t.Helper()
	ep, example, ran := "", "", 0
	for _, c := range readmeCommands(readme) {
		if c.section != "Endpoints" || c.sub == sendingSection || c.sub == fanoutSection {
			continue
		}
		head := c.head()
		if v, ok := strings.CutPrefix(head, "EP="); ok {
			if example == "" || v != example {
				t.Errorf("README sets EP=%s, not the id its create answered (%s)", v, example)
			}
			continue
		}
		if c.doc == "" {
			t.Errorf("README documents no answer for %s", c.text)
			continue
		}
		ran++
		cmd := exec.CommandContext(ctx, "sh", "-c", c.text)
		cmd.Env = append(os.Environ(), "API="+api, "EP="+ep)
		out, err := cmd.Output()
		got := parseAnswer(string(out))
		if got.status == http.StatusCreated && ep == "" {
			var created endpointView
			if json.Unmarshal([]byte(got.body), &created) == nil {
				ep, example = created.ID, readmeEndpointID.FindString(c.doc)
			}
		}
		doc := c.doc
		if example != "" {
			doc = strings.ReplaceAll(doc, example, ep)
		}
		want := parseAnswer(doc)
		problems := mismatches(c.text, want, got)
		if err != nil {
			problems = append(problems, err.Error())
		}
		var wantFields, gotFields map[string]json.RawMessage
		if json.Unmarshal([]byte(want.body), &wantFields) == nil {
			if json.Unmarshal([]byte(got.body), &gotFields) != nil {
				problems = append(problems, "the answer is not a JSON object")
			}
			for k := range wantFields {
				if _, ok := gotFields[k]; !ok {
					problems = append(problems, "no field "+k+", which the README shows")
				}
			}
		} else if want.body != "" {
			problems = append(problems, "the README's answer is not a JSON object: "+want.body)
		}
		if len(problems) > 0 {
			t.Errorf("README command:\n%s\nanswered:\n%s\n%s", c.text, out, strings.Join(problems, "\n"))
		}
	}
	if ran < 7 || ep == "" {
		t.Errorf("ran %d commands of the README's Endpoints section (endpoint %q); the parser lost some", ran, ep)
	}
}

// testReadmeEndpoints runs the README's Endpoints section against the stack.
func testReadmeEndpoints(t *testing.T, s *e2eStack) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	doc, err := os.ReadFile(filepath.Join(s.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	runEndpointExamples(t, ctx, string(doc), s.api)
}

// testEndpointSecretsSurviveRestart starts a second `pushfn run` on the first one's table: it
// reads the local ENDPOINT_SECRETS_KEY the first one used from the state directory, so the
// secrets the first one stored still decrypt.
func testEndpointSecretsSurviveRestart(t *testing.T, s *e2eStack) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var e endpointView
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", map[string]any{"url": "https://hooks.example.com/restart"}, &e); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	again := startStackWith(t, stackOptions{args: []string{"--table", s.table, "--queue", s.queue}})
	var secret endpointView
	if code := again.do(t, ctx, http.MethodGet, "/v1/endpoints/"+e.ID+"/secret", nil, &secret); code != http.StatusOK || secret.Key != e.Secret {
		t.Fatalf("the secret through a second pushfn run: %d, same %v; want 200 and the created secret", code, secret.Key == e.Secret)
	}
}

// sendingSection is the README's subsection on messages to an endpoint, which
// testSendingToEndpoint runs.
const sendingSection = "Sending to an endpoint"

// readmeMessageID is a message id the README shows; the test puts the real one in its place.
var readmeMessageID = regexp.MustCompile(`msg_[0-9a-z]{26}`)

// testSendingToEndpoint runs the README's "Sending to an endpoint" commands in order against the
// stack: a `pushfn receiver` with the README's secret, an endpoint registered with that secret
// at the receiver's address, a message to it (the receiver checks the endpoint's signature, GET
// shows it delivered with its endpoint_id), the endpoint disabled and a second message (it ends
// failed, endpoint_disabled, with no attempt and no push), a message to an endpoint that does
// not exist (422, nothing written), and the endpoint's deliveries listed (both messages, newest
// first; with status=failed the disabled one only; a bad query refused). Each answer is checked
// against what the README shows.
func testSendingToEndpoint(t *testing.T, s *e2eStack) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	doc, err := os.ReadFile(filepath.Join(s.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var recv *receiverProcess
	ep := ""
	// The README's example ids, mapped to the ones the stack answered.
	ids := map[string]string{}
	local := func(text string) string {
		for example, real := range ids {
			text = strings.ReplaceAll(text, example, real)
		}
		if recv != nil {
			text = strings.ReplaceAll(text, "http://127.0.0.1:9000", recv.url)
		}
		return text
	}
	var sent []string // the messages the README sends, in order
	ran := 0
	for _, c := range readmeCommands(string(doc)) {
		if c.section != "Endpoints" || c.sub != sendingSection {
			continue
		}
		head := c.head()
		if rest, ok := strings.CutPrefix(head, "go run ./cmd/pushfn receiver --secret "); ok {
			recv = startReceiverWith(t, ctx, s, strings.TrimSpace(rest))
			continue
		}
		if v, ok := strings.CutPrefix(head, "EP="); ok {
			if ids[v] == "" || ids[v] != ep {
				t.Errorf("README sets EP=%s, not the id its create answered", v)
			}
			continue
		}
		if recv == nil || c.doc == "" {
			t.Fatalf("README command before its receiver started, or without a documented answer: %s", c.text)
		}
		ran++
		want := parseAnswer(local(c.doc))
		read := !strings.Contains(c.text, " -d ") && !strings.Contains(c.text, " -X ")
		for {
			out, got, problems := runDocumented(ctx, local(c.text), c.text, want, "API="+s.api, "EP="+ep)
			// A read documented with a final status is repeated until the message gets there.
			if gotStatus := first(statusFld, got.body); read && len(problems) > 0 && gotStatus != "" && !final(gotStatus) && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if len(problems) > 0 {
				t.Fatalf("README command:\n%s\nanswered:\n%s\n%s", c.text, out, strings.Join(problems, "\n"))
			}
			var answer struct {
				ID          string `json:"id"`
				Attempts    int    `json:"attempts"`
				EndpointID  string `json:"endpoint_id"`
				LastAttempt *struct {
					Error string `json:"error"`
				} `json:"last_attempt"`
			}
			_ = json.Unmarshal([]byte(got.body), &answer)
			switch {
			case strings.Contains(c.text, "/v1/endpoints\"") && ep == "":
				ep = answer.ID
				if example := readmeEndpointID.FindString(c.doc); example != "" {
					ids[example] = ep
				}
			case strings.Contains(c.text, "/deliveries"):
				checkDeliveries(t, c.text, got.body, ep, sent)
			case strings.Contains(c.text, "/v1/messages\"") && answer.ID != "":
				sent = append(sent, answer.ID)
				if example := readmeMessageID.FindString(c.doc); example != "" {
					ids[example] = answer.ID
				}
			case read:
				if answer.EndpointID != ep {
					t.Errorf("GET %s shows endpoint_id %q, want %s", answer.ID, answer.EndpointID, ep)
				}
				if wantErr := first(regexp.MustCompile(`"error":"([a-z_]+)"`), c.doc); wantErr != "" &&
					(answer.Attempts != 0 || answer.LastAttempt == nil || answer.LastAttempt.Error != wantErr) {
					t.Errorf("GET %s: %s, want no attempt and last_attempt.error %s", answer.ID, got.body, wantErr)
				}
			}
			break
		}
	}
	if ran < 10 || len(sent) != 2 || recv == nil {
		t.Fatalf("ran %d commands of %q, sent %v; the parser lost some", ran, sendingSection, sent)
	}
	// The first message arrived once, signed with the endpoint's secret; the second never did.
	if !recv.await(ctx, "push id="+sent[0]+" ") {
		t.Fatalf("the receiver printed %q, not the first message", recv.output())
	}
	out := recv.output()
	// As the README shows it: the payload's 36 bytes as sent, the signature checked.
	if !strings.Contains(out, "push id="+sent[0]+" size=36 signature=ok") || strings.Count(out, sent[0]) != 1 {
		t.Errorf("the receiver printed %q, want %s once, 36 bytes, signature=ok", out, sent[0])
	}
	if strings.Contains(out, sent[1]) {
		t.Errorf("the receiver got %s, sent to the disabled endpoint", sent[1])
	}
}

// checkDeliveries checks a listing of the endpoint's deliveries the README's sending section
// runs, after its two messages ended: both newest first (the second, failed as disabled, then
// the first, delivered), or with status=failed the second only. An error answer was checked
// against the README already.
func checkDeliveries(t *testing.T, cmd, body, ep string, sent []string) {
	t.Helper()
	if first(codeField, body) != "" {
		return
	}
	var page struct {
		Deliveries []struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			EndpointID string `json:"endpoint_id"`
		} `json:"deliveries"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(sent) != 2 {
		t.Fatalf("%s: %v (sent %v): %s", cmd, err, sent, body)
	}
	want := []string{sent[1] + " failed", sent[0] + " delivered"}
	if strings.Contains(cmd, "status=failed") {
		want = want[:1]
	}
	var got []string
	for _, d := range page.Deliveries {
		got = append(got, d.ID+" "+d.Status)
		if d.EndpointID != ep {
			t.Errorf("%s lists %s with endpoint_id %q, want %s", cmd, d.ID, d.EndpointID, ep)
		}
	}
	if !slices.Equal(got, want) || page.NextCursor != nil {
		t.Errorf("%s lists %v (next_cursor %v), want %v and no cursor", cmd, got, page.NextCursor, want)
	}
}
