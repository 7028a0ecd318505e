package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fanoutSection is the README's subsection on fan-out, which testFanOutReadme runs.
const fanoutSection = "Fan-out"

// textBlock is a ```text block of the README.
var textBlock = regexp.MustCompile("(?s)```text\n(.*?)```")

// testFanOutReadme runs the README's "Fan-out" commands in order against the stack: two `pushfn
// receiver`s, each with its own secret; two endpoints of one tenant with different filters,
// registered with those secrets at the receivers' addresses; three events of three types
// published in one batch. Each answer is checked against what the README shows; a read is
// repeated until the message and its deliveries are final. Then each receiver must have printed
// exactly the lines the README's text blocks show for it (its events, once each, signatures
// checked with its own endpoint's secret), and nothing of the other events.
func testFanOutReadme(t *testing.T, s *e2eStack) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	raw, err := os.ReadFile(filepath.Join(s.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	var recvs []*receiverProcess
	// README example → the stack's; the README's tenant becomes one of this stack's own, so
	// that the endpoints other subtests register for it are not in the fan-out.
	tenant := "readme-" + strings.ToLower(s.table)
	ids := map[string]string{`"tenant_id": "acme"`: `"tenant_id": "` + tenant + `"`, `"tenant_id":"acme"`: `"tenant_id":"` + tenant + `"`}
	local := func(text string) string {
		for example, real := range ids {
			text = strings.ReplaceAll(text, example, real)
		}
		return text
	}
	var readmeMsgs []string // the README's example ids of the published events, in order
	ran := 0
	for _, c := range readmeCommands(doc) {
		if c.section != "Endpoints" || c.sub != fanoutSection {
			continue
		}
		if rest, ok := strings.CutPrefix(c.head(), "go run ./cmd/pushfn receiver --addr "); ok {
			addr, secret, ok := strings.Cut(rest, " --secret ")
			if !ok {
				t.Fatalf("README receiver command without --secret: %s", c.text)
			}
			rp := startReceiverWith(t, ctx, s, strings.TrimSpace(secret))
			ids["http://"+addr] = rp.url
			recvs = append(recvs, rp)
			continue
		}
		if c.doc == "" {
			t.Fatalf("README command without a documented answer: %s", c.text)
		}
		ran++
		want := parseAnswer(local(c.doc))
		read := !strings.Contains(c.text, " -d ")
		for {
			out, got, problems := runDocumented(ctx, local(c.text), c.text, want, "API="+s.api)
			var answer struct {
				ID       string `json:"id"`
				Messages []struct {
					ID string `json:"id"`
				} `json:"messages"`
				Deliveries json.RawMessage `json:"deliveries"`
			}
			_ = json.Unmarshal([]byte(got.body), &answer)
			// A read is repeated until every delivery it shows has ended as the README shows.
			if read && len(problems) == 0 && !deliveriesAsDocumented(want.body, got.body) {
				problems = append(problems, "deliveries not yet as the README shows them")
			}
			if read && len(problems) > 0 && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if len(problems) > 0 {
				t.Fatalf("README command:\n%s\nanswered:\n%s\n%s", c.text, out, strings.Join(problems, "\n"))
			}
			switch {
			case strings.Contains(c.text, "/v1/endpoints\""):
				if example := readmeEndpointID.FindString(c.doc); example != "" {
					ids[example] = answer.ID
				}
			case strings.Contains(c.text, "/v1/messages/batch\""):
				examples := readmeMessageID.FindAllString(c.doc, -1)
				if len(examples) != len(answer.Messages) {
					t.Fatalf("README shows %d ids for the batch, the stack answered %d", len(examples), len(answer.Messages))
				}
				for i, e := range examples {
					ids[e] = answer.Messages[i].ID
				}
				readmeMsgs = examples
			}
			break
		}
	}
	section := doc[strings.Index(doc, "### "+fanoutSection):]
	section = section[:strings.Index(section, "\n## ")]
	blocks := textBlock.FindAllStringSubmatch(section, -1)
	if ran < 5 || len(recvs) != 2 || len(blocks) != 2 || len(readmeMsgs) != 3 {
		t.Fatalf("ran %d commands, %d receivers, %d text blocks, %d events; the parser lost some", ran, len(recvs), len(blocks), len(readmeMsgs))
	}
	for i, rp := range recvs {
		lines := strings.Split(strings.TrimSpace(local(blocks[i][1])), "\n")
		for _, line := range lines {
			if !rp.await(ctx, line+"\n") {
				t.Fatalf("receiver %d printed %q, not the README's line %q", i+1, rp.output(), line)
			}
		}
		out := rp.output()
		for _, example := range readmeMsgs {
			real := ids[example]
			if n, want := strings.Count(out, "id="+real+" "), strings.Count(local(blocks[i][1]), "id="+real+" "); n != want {
				t.Errorf("receiver %d got %s %d times, the README shows it %d times", i+1, real, n, want)
			}
		}
	}
}

// deliveriesAsDocumented reports whether got shows its deliveries as the README's want does:
// the same summary counts (GET of a fan-out) or the same statuses in order (its listing); true
// when want shows no deliveries.
func deliveriesAsDocumented(want, got string) bool {
	var w, g struct {
		Deliveries json.RawMessage `json:"deliveries"`
	}
	if json.Unmarshal([]byte(want), &w) != nil || len(w.Deliveries) == 0 {
		return true
	}
	if json.Unmarshal([]byte(got), &g) != nil {
		return false
	}
	var wc, gc map[string]int
	if json.Unmarshal(w.Deliveries, &wc) == nil {
		return json.Unmarshal(g.Deliveries, &gc) == nil && equalCounts(wc, gc)
	}
	var wl, gl []struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(w.Deliveries, &wl) != nil || json.Unmarshal(g.Deliveries, &gl) != nil || len(wl) != len(gl) {
		return false
	}
	for i := range wl {
		if wl[i].Status != gl[i].Status {
			return false
		}
	}
	return true
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// runDocumented runs the README command text (cmd as the README has it, for the messages) with
// env added, and returns its output, the answer parsed, and how it differs from want: status
// line, headers, error code, status and details fields (see mismatches), and every top-level
// field want shows.
func runDocumented(ctx context.Context, text, cmd string, want documented, env ...string) ([]byte, documented, []string) {
	c := exec.CommandContext(ctx, "sh", "-c", text)
	c.Env = append(os.Environ(), env...)
	out, err := c.Output()
	got := parseAnswer(string(out))
	problems := mismatches(cmd, want, got)
	if err != nil {
		problems = append(problems, err.Error())
	}
	var wantFields, gotFields map[string]json.RawMessage
	if json.Unmarshal([]byte(want.body), &wantFields) != nil || json.Unmarshal([]byte(got.body), &gotFields) != nil {
		problems = append(problems, "the README's answer or the stack's is not a JSON object")
	}
	for k := range wantFields {
		if _, ok := gotFields[k]; !ok {
			problems = append(problems, "no field "+k+", which the README shows")
		}
	}
	return out, got, problems
}
