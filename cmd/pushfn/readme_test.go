package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README is kept true by running its commands: every command of a ```sh block is either run
// by a test (or by CI), or deploys to AWS. TestReadmeCommandsRun holds the list.

// readmeCommand is one command of a ```sh block of the README, with what the README documents
// right after it.
type readmeCommand struct {
	section string // the "## " heading above it
	sub     string // the "### " heading above it within its section, if any
	text    string // the command as the shell reads it, continuation lines included
	doc     string // the "# " lines after it, or the fenced block right after its block
}

// head is the command's first line without its trailing comment, spaces collapsed.
func (c readmeCommand) head() string {
	line, _, _ := strings.Cut(c.text, "\n")
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	return strings.Join(strings.Fields(line), " ")
}

// readReadme returns the README's text.
func readReadme(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

// readmeCommands returns the commands of every ```sh block of doc, in order.
func readmeCommands(doc string) []readmeCommand {
	var cmds []readmeCommand
	lines := strings.Split(doc, "\n")
	section, sub := "", ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section, sub = strings.TrimSpace(h), ""
			continue
		}
		if h, ok := strings.CutPrefix(line, "### "); ok {
			sub = strings.TrimSpace(h)
			continue
		}
		if !strings.HasPrefix(line, "```") {
			continue
		}
		block, end := fencedBlock(lines, i)
		i = end
		if strings.TrimSpace(line) != "```sh" {
			continue
		}
		found := splitShell(block)
		for j := range found {
			found[j].section, found[j].sub = section, sub
		}
		// A command documented by neither comments nor a block after it has no documented output.
		if n := len(found); n > 0 && found[n-1].doc == "" {
			next := i + 1
			for next < len(lines) && strings.TrimSpace(lines[next]) == "" {
				next++
			}
			if next < len(lines) && strings.HasPrefix(lines[next], "```") && strings.TrimSpace(lines[next]) != "```sh" {
				out, end := fencedBlock(lines, next)
				found[n-1].doc = strings.Join(out, "\n")
				i = end
			}
		}
		cmds = append(cmds, found...)
	}
	return cmds
}

// fencedBlock returns the lines of the fenced block opening at lines[start] and the index of its
// closing fence.
func fencedBlock(lines []string, start int) ([]string, int) {
	for end := start + 1; end < len(lines); end++ {
		if strings.HasPrefix(lines[end], "```") {
			return lines[start+1 : end], end
		}
	}
	return lines[start+1:], len(lines)
}

// splitShell splits the lines of a shell block into commands: a command goes on while a quote
// is open or its line ends with \, | , && or ||. Comment lines after a command are its
// documented output.
func splitShell(lines []string) []readmeCommand {
	var cmds []readmeCommand
	var cur []string
	var quote byte
	open := false
	for _, line := range lines {
		if !open {
			trimmed := strings.TrimSpace(line)
			if trimmed == "" {
				continue
			}
			if comment, ok := strings.CutPrefix(trimmed, "#"); ok {
				if n := len(cmds); n > 0 {
					cmds[n-1].doc += strings.TrimPrefix(comment, " ") + "\n"
				}
				continue
			}
		}
		cur = append(cur, line)
		quote, open = scanShellLine(line, quote)
		if !open {
			cmds = append(cmds, readmeCommand{text: strings.Join(cur, "\n")})
			cur = nil
		}
	}
	if len(cur) > 0 {
		cmds = append(cmds, readmeCommand{text: strings.Join(cur, "\n")})
	}
	return cmds
}

// scanShellLine follows the quotes of one line, starting inside quote (0 for none), and reports
// the quote still open at its end and whether the command goes on to the next line.
func scanShellLine(line string, quote byte) (byte, bool) {
	code := line
scan:
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case quote == '"':
			if c == '\\' {
				i++
			} else if c == '"' {
				quote = 0
			}
		case c == '\\':
			if i == len(line)-1 {
				return 0, true
			}
			i++
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			code = line[:i]
			break scan
		}
	}
	if quote != 0 {
		return quote, true
	}
	code = strings.TrimSpace(code)
	return 0, strings.HasSuffix(code, "|") || strings.HasSuffix(code, "&&") || strings.HasSuffix(code, "||")
}

func TestSplitShell(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		block    string
		wantCmds []string
		wantDocs []string
	}{
		{
			name:     "one per line, trailing comments",
			block:    "make a   # does a\nmake b\n",
			wantCmds: []string{"make a   # does a", "make b"},
			wantDocs: []string{"", ""},
		},
		{
			name:     "backslash and quotes span lines",
			block:    "curl -s x \\\n  -d '{\"a\":\n 1}'\n# {\"ok\":true}\n# more\n\ncurl y\n",
			wantCmds: []string{"curl -s x \\\n  -d '{\"a\":\n 1}'", "curl y"},
			wantDocs: []string{"{\"ok\":true}\nmore\n", ""},
		},
		{
			name:     "pipe at the end of a line",
			block:    "head -c 1 /dev/zero |\n  wc -c\n# 1\n",
			wantCmds: []string{"head -c 1 /dev/zero |\n  wc -c"},
			wantDocs: []string{"1\n"},
		},
		{
			name:     "a # inside quotes is no comment",
			block:    "echo 'a # b' \"#\" |\n  cat\n",
			wantCmds: []string{"echo 'a # b' \"#\" |\n  cat"},
			wantDocs: []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := splitShell(strings.Split(tt.block, "\n"))
			var cmds, docs []string
			for _, c := range got {
				cmds, docs = append(cmds, c.text), append(docs, c.doc)
			}
			if !slices.Equal(cmds, tt.wantCmds) || !slices.Equal(docs, tt.wantDocs) {
				t.Errorf("splitShell:\n got %q %q\nwant %q %q", cmds, docs, tt.wantCmds, tt.wantDocs)
			}
		})
	}
}

// readmeRunner says who runs a README command.
type readmeRunner struct {
	prefix  string // the command, or its first words
	section string // when set, the command must be in this "## " section
	by      string // a test of this repository (TestName), "CI", "AWS" (deployment only) or "not run"
	why     string // for "not run" and "CI": the reason or the proof
	recipe  string // for make targets: what the Makefile recipe must run, so the test running it runs the same
}

// readmeRunners maps every command of the README to what runs it.
var readmeRunners = []readmeRunner{
	{prefix: "make run", by: "TestIntegrationE2E", recipe: "$(GO) run ./cmd/pushfn run $(ARGS)",
		why: "the e2e test runs the pushfn binary's run command, with flags for a free port and its own table"},
	{prefix: "go run ./cmd/pushfn receiver", by: "TestIntegrationE2E", why: "the quick start subtest starts pushfn receiver"},
	{prefix: "curl -s http://127.0.0.1:3000/v1/messages", section: "Quick start", by: "TestIntegrationE2E", why: "the quick start subtest"},
	{prefix: "curl -s http://127.0.0.1:3000/v1/messages/<id>", section: "Quick start", by: "TestIntegrationE2E", why: "the quick start subtest"},
	{prefix: "API=http://127.0.0.1:3000", section: "HTTP API", by: "TestIntegrationE2E", why: "the HTTP API subtest sets API to its stack"},
	{prefix: "curl", section: "HTTP API", by: "TestIntegrationE2E", why: "the HTTP API subtest runs every command of its section"},
	{prefix: "head -c 400000 /dev/zero", section: "HTTP API", by: "TestIntegrationE2E", why: "the HTTP API subtest runs every command of its section"},
	{prefix: "EP=ep_06h3230102tq4gpdzyxsvjwpec", section: "Endpoints", by: "TestIntegrationE2E", why: "the README Endpoints subtest sets EP to the endpoint its create made"},
	{prefix: "curl", section: "Endpoints", by: "TestIntegrationE2E", why: "the README Endpoints subtest runs every command of its section"},
	{prefix: "curl", section: "Recovery", by: "TestIntegrationE2E", why: "the README Window recovery subtest runs every command of its section"},
	{prefix: "EP=ep_06h3b2r4m2tq4gpdzyxsvjwq01", section: "Endpoints", by: "TestIntegrationE2E", why: "the sending-to-an-endpoint subtest sets EP to the endpoint its create made"},
	{prefix: "curl -s http://127.0.0.1:3001/status.json", section: "Status page", by: "TestIntegrationStatusPage",
		why: "runs the command against its stack's status page and checks its answer against the README's and the page's"},
	{prefix: "make invoke FN=RelayFunction EVENT=events/eventbridge.json", by: "TestIntegrationMakeInvoke", recipe: "$(GO) run ./cmd/pushfn invoke $(FN) -e $(EVENT)"},
	{prefix: "make test", by: "CI", why: ".ci/run runs make test", recipe: "dev/test.sh"},
	{prefix: "make emulators-up", by: "TestIntegrationReadmeEmulators", recipe: "$(GO) run ./cmd/pushfn emulators up"},
	{prefix: `eval "$(go run ./cmd/pushfn emulators env)"`, by: "TestIntegrationReadmeEmulators"},
	{prefix: "go run ./cmd/pushfn setup", by: "TestIntegrationReadmeEmulators"},
	{prefix: "make emulators-down", by: "TestIntegrationReadmeEmulators", recipe: "$(GO) run ./cmd/pushfn emulators down"},
	{prefix: "go run ./cmd/pushfn cost", section: "Cost", by: "TestIntegrationCostReadme", why: "runs the command's measurement with its flags, scaled down to 300 messages, and checks its report's rows against the README's"},
	{prefix: "make build", by: "TestIntegrationMakeBuild"},
	{prefix: "make help", by: "TestMakeHelp"},
	{prefix: "make lint", by: "not run", why: "a developer's check before a commit: on a fresh machine it fetches staticcheck " +
		"through the Go module proxy, and tests reach no network; CI runs make test only"},
	{prefix: "make bench", by: "not run", why: "a measurement with no pass or fail: it installs wrk from Debian's packages " +
		"and wants a quiet machine; TestBenchDeliver runs the command it measures"},
	{prefix: "SCENARIOS=tls make bench", by: "not run", why: "as make bench; TestBenchTLS runs the commands it measures " +
		"against receiver --tls"},
	{prefix: "go run ./cmd/pushfn redrive --local", by: "TestIntegrationRedriveReadme",
		why: "dead-letters messages of its own queue through the deliver handler, runs the command with --queue naming that queue, and delivers them"},
	{prefix: "go run ./cmd/pushfn redrive --stack", by: "AWS", why: "needs a deployed stack and AWS credentials; " +
		"TestRedriveAWS runs the same redrive against fakes of SQS and CloudFormation"},
	{prefix: "sam", by: "AWS", why: "needs SAM CLI, Docker or an AWS account"},
	{prefix: "aws", by: "AWS", why: "needs a deployed stack and AWS credentials"},
}

// runnerFor returns the first runner whose prefix starts the command.
func runnerFor(c readmeCommand) (readmeRunner, bool) {
	head := c.head()
	for _, r := range readmeRunners {
		if (r.section == "" || r.section == c.section) && (head == r.prefix || strings.HasPrefix(head, r.prefix+" ")) {
			return r, true
		}
	}
	return readmeRunner{}, false
}

// TestReadmeCommandsRun fails when a command of the README is run by no test: each must be in
// readmeRunners, naming a test that exists, or CI, or be an AWS deployment command.
func TestReadmeCommandsRun(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tests := testFunctions(t, root)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(readReadme(t))
	if len(cmds) < 20 {
		t.Fatalf("found %d commands in the README's sh blocks; the parser lost some", len(cmds))
	}
	for _, c := range cmds {
		r, ok := runnerFor(c)
		t.Logf("%-14s %-31s %s", c.section, r.by, c.head())
		switch {
		case !ok:
			t.Errorf("README (## %s): no test runs %q; run it in a test and add it to readmeRunners", c.section, c.head())
			continue
		case r.by == "CI":
			ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
			if err != nil || !strings.Contains(string(ci), "\n"+r.prefix) {
				t.Errorf("%q is said to run in CI, but .ci/run does not run it (%v)", r.prefix, err)
			}
		case r.by == "AWS" || r.by == "not run":
			if r.why == "" {
				t.Errorf("%q: say why no test runs it", r.prefix)
			}
		case !tests[r.by]:
			t.Errorf("%q is said to run in %s, which does not exist", c.head(), r.by)
		}
		if r.recipe != "" {
			target := strings.Fields(r.prefix)[1]
			if got := makeRecipe(string(makefile), target); !strings.Contains(got, r.recipe) {
				t.Errorf("Makefile target %s runs %q, want %q (what %s runs)", target, got, r.recipe, r.by)
			}
		}
	}
}

// testFunctions returns the names of the Test functions of the repository.
func testFunctions(t *testing.T, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// makeRecipe returns the recipe lines of a Makefile target.
func makeRecipe(makefile, target string) string {
	var recipe []string
	in := false
	for line := range strings.SplitSeq(makefile, "\n") {
		switch {
		case strings.HasPrefix(line, target+":"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case in:
			return strings.Join(recipe, "\n")
		}
	}
	return strings.Join(recipe, "\n")
}

// TestMakeHelp runs `make help` and checks it lists every target the README runs with make.
func TestMakeHelp(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "help")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	listed := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			listed[f[0]] = true
		}
	}
	for _, c := range readmeCommands(readReadme(t)) {
		if f := strings.Fields(c.head()); len(f) > 1 && f[0] == "make" && !listed[f[1]] {
			t.Errorf("make help does not list %s, which the README runs:\n%s", f[1], out)
		}
	}
}

// documented is an HTTP answer as the README shows it or as curl printed it.
type documented struct {
	status  int               // 0 when not shown
	headers map[string]string // canonical name → value
	body    string
}

var (
	statusLine = regexp.MustCompile(`^HTTP/1\.1 (\d{3})\b`)
	headerLine = regexp.MustCompile(`^([A-Za-z0-9-]+): (.*)$`)
	codeField  = regexp.MustCompile(`"code":\s*"([^"]*)"`)
	statusFld  = regexp.MustCompile(`"status":\s*"([^"]*)"`)
	idField    = regexp.MustCompile(`"id":\s*"(msg_[0-9a-z]+)"`)
	fieldFld   = regexp.MustCompile(`"field":\s*"([^"]*)"`)
)

// parseAnswer reads a status line and headers (when there is one) and the body after them.
func parseAnswer(text string) documented {
	lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(text), "\r\n", "\n"), "\n")
	d := documented{headers: map[string]string{}}
	if len(lines) > 0 {
		if m := statusLine.FindStringSubmatch(lines[0]); m != nil {
			d.status, _ = strconv.Atoi(m[1])
			lines = lines[1:]
			for len(lines) > 0 && !strings.HasPrefix(lines[0], "{") {
				if m := headerLine.FindStringSubmatch(lines[0]); m != nil {
					d.headers[http.CanonicalHeaderKey(m[1])] = strings.TrimSpace(m[2])
				}
				lines = lines[1:]
			}
		}
	}
	d.body = strings.TrimSpace(strings.Join(lines, "\n"))
	return d
}

func first(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

func all(re *regexp.Regexp, s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// mismatches lists how got differs from what the README documents for cmd: the status line, the
// documented headers, the error code, the first status, the id when the request determines it
// (an idempotency key or the id in the URL) and the fields of the details.
func mismatches(cmd string, want, got documented) []string {
	var out []string
	if want.status != 0 && got.status != want.status {
		out = append(out, "status "+strconv.Itoa(got.status)+", README says "+strconv.Itoa(want.status))
	}
	for name, v := range want.headers {
		if got.headers[name] != v {
			out = append(out, name+": "+strconv.Quote(got.headers[name])+", README says "+strconv.Quote(v))
		}
	}
	if want.body == "" {
		return out
	}
	if w, g := first(codeField, want.body), first(codeField, got.body); w != g {
		out = append(out, "code "+strconv.Quote(g)+", README says "+strconv.Quote(w))
	}
	if w, g := first(statusFld, want.body), first(statusFld, got.body); w != "" && w != g {
		out = append(out, "status field "+strconv.Quote(g)+", README says "+strconv.Quote(w))
	}
	if w := first(idField, want.body); w != "" && (strings.Contains(cmd, w) || strings.Contains(strings.ToLower(cmd), "idempotency")) {
		if g := first(idField, got.body); g != w {
			out = append(out, "id "+strconv.Quote(g)+", README says "+strconv.Quote(w))
		}
	}
	if w, g := all(fieldFld, want.body), all(fieldFld, got.body); len(w) > 0 && !slices.Equal(w, g) {
		out = append(out, "details fields "+strings.Join(g, ",")+", README says "+strings.Join(w, ","))
	}
	return out
}

func final(status string) bool {
	return status == "delivered" || status == "failed" || status == "expired"
}

// runHTTPAPIExamples runs the commands of the README's "## HTTP API" section in README order
// against the stack at api, with API set to it and the hooks.example.com targets pointed at
// target (a loopback receiver), and checks each answer against what the README documents after
// the command. A read documented with a final status is repeated until the message gets there.
// It returns the ids of the messages the examples got accepted.
func runHTTPAPIExamples(t *testing.T, ctx context.Context, readme, api, target string) []string {
	t.Helper()
	var ids []string
	ran := 0
	for _, c := range readmeCommands(readme) {
		if c.section != "HTTP API" {
			continue
		}
		head := c.head()
		if r, ok := runnerFor(c); ok && r.by == "AWS" {
			t.Logf("skipped, AWS only: %s", head)
			continue
		}
		if v, ok := strings.CutPrefix(head, "API="); ok {
			if v != "http://127.0.0.1:3000" {
				t.Errorf("README sets API=%s, not the address make run serves", v)
			}
			continue
		}
		want := parseAnswer(c.doc)
		if c.doc == "" || (want.status == 0 && want.body == "") {
			t.Errorf("README documents no answer for %s", c.text)
			continue
		}
		local := strings.ReplaceAll(c.text, "https://hooks.example.com", target)
		if first(codeField, want.body) == "" && want.status < 300 && strings.Contains(local, "hooks.example.com") {
			t.Errorf("not run: it would push to hooks.example.com, off loopback: %s", local)
			continue
		}
		ran++
		for {
			cmd := exec.CommandContext(ctx, "sh", "-c", local)
			cmd.Env = append(os.Environ(), "API="+api)
			out, err := cmd.Output()
			got := parseAnswer(string(out))
			problems := mismatches(c.text, want, got)
			if err != nil {
				problems = append(problems, err.Error())
			}
			if len(problems) == 0 {
				if got.status < 300 && first(codeField, got.body) == "" {
					ids = append(ids, all(idField, got.body)...)
				}
				break
			}
			gotStatus := first(statusFld, got.body)
			read := !strings.Contains(local, " -d ") && !strings.Contains(local, " -X ")
			if read && final(first(statusFld, want.body)) && gotStatus != "" && !final(gotStatus) && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Errorf("README command:\n%s\nanswered:\n%s\n%s", c.text, out, strings.Join(problems, "\n"))
			break
		}
	}
	if ran < 5 {
		t.Errorf("ran %d commands of the README's HTTP API section; the parser lost some", ran)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
