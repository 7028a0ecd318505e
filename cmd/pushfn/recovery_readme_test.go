package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// recoverySection is the README's subsection on window recovery, which testRecoveryReadme runs.
const recoverySection = "Window recovery"

// readmeRecoveryID is a recovery id the README shows; the test puts the real one in its place.
var readmeRecoveryID = regexp.MustCompile(`rcv_[0-9a-z]{26}`)

// testRecoveryReadme runs the README's "Window recovery" commands in order against the stack: a
// `pushfn receiver` failing each message's first 10 pushes, an endpoint to it, three messages
// that fail (the test waits for all three before going on, as the README says to), one retried
// alone, the other two recovered with the window. Each answer is checked against what the
// README shows, a read repeated until it matches; the recovery must end with 2 matched and 2
// requeued, and the receiver must have got each message exactly 11 times: 10 pushes it failed,
// then one it took, none sent twice.
func testRecoveryReadme(t *testing.T, s *e2eStack) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	raw, err := os.ReadFile(filepath.Join(s.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var recv *receiverProcess
	ids := map[string]string{}
	local := func(text string) string {
		for example, real := range ids {
			text = strings.ReplaceAll(text, example, real)
		}
		return text
	}
	var msgs []string // the README's example message ids, in order
	ran := 0
	for _, c := range readmeCommands(string(raw)) {
		if c.section != "Recovery" || c.sub != recoverySection {
			continue
		}
		if rest, ok := strings.CutPrefix(c.head(), "go run ./cmd/pushfn receiver --addr "); ok {
			addr, args, _ := strings.Cut(rest, " ")
			recv = startReceiverArgs(t, ctx, s, strings.Fields(args)...)
			ids["http://"+addr] = recv.url
			continue
		}
		if recv == nil || c.doc == "" {
			t.Fatalf("README command before its receiver, or without a documented answer: %s", c.text)
		}
		if strings.Contains(c.text, "/retry") {
			// The README's reader waits for the three messages to fail; so does the test.
			for _, m := range msgs {
				id := ids[m]
				if !poll(ctx, 200*time.Millisecond, func() bool {
					var v struct {
						Status string `json:"status"`
					}
					return s.do(t, ctx, "GET", "/v1/messages/"+id, nil, &v) == 200 && v.Status == "failed"
				}) {
					t.Fatalf("message %s never failed", id)
				}
			}
		}
		ran++
		want := parseAnswer(local(c.doc))
		read := !strings.Contains(c.text, " -d ") && !strings.Contains(c.text, " -X ")
		for {
			out, got, problems := runDocumented(ctx, local(c.text), c.text, want, "API="+s.api)
			if read && len(problems) > 0 && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if len(problems) > 0 {
				t.Fatalf("README command:\n%s\nanswered:\n%s\n%s", c.text, out, strings.Join(problems, "\n"))
			}
			var answer struct {
				ID       string `json:"id"`
				Matched  int    `json:"matched"`
				Requeued int    `json:"requeued"`
				Messages []struct {
					ID string `json:"id"`
				} `json:"messages"`
			}
			_ = json.Unmarshal([]byte(got.body), &answer)
			switch {
			case strings.Contains(c.text, "/v1/endpoints\""):
				ids[readmeEndpointID.FindString(c.doc)] = answer.ID
			case strings.Contains(c.text, "/v1/messages/batch\""):
				msgs = readmeMessageID.FindAllString(c.doc, -1)
				if len(msgs) != len(answer.Messages) {
					t.Fatalf("README shows %d ids for the batch, the stack answered %d", len(msgs), len(answer.Messages))
				}
				for i, e := range msgs {
					ids[e] = answer.Messages[i].ID
				}
			case strings.Contains(c.text, "/recover\""):
				ids[readmeRecoveryID.FindString(c.doc)] = answer.ID
			case strings.Contains(c.text, "/v1/recoveries/"):
				if answer.Matched != 2 || answer.Requeued != 2 {
					t.Errorf("the recovery ended with %d matched and %d requeued, want 2 and 2", answer.Matched, answer.Requeued)
				}
			}
			break
		}
	}
	if ran < 7 || len(msgs) != 3 {
		t.Fatalf("ran %d commands of %q with %d messages; the parser lost some", ran, recoverySection, len(msgs))
	}
	for _, m := range msgs {
		id := ids[m]
		if !poll(ctx, 200*time.Millisecond, func() bool { return strings.Count(recv.output(), "id="+id+" ") >= 11 }) {
			t.Fatalf("the receiver got %s %d times, want 11", id, strings.Count(recv.output(), "id="+id+" "))
		}
	}
	for _, m := range msgs {
		if n := strings.Count(recv.output(), "id="+ids[m]+" "); n != 11 {
			t.Errorf("the receiver got %s %d times, want 11 (10 failed, 1 taken)", ids[m], n)
		}
	}
}
