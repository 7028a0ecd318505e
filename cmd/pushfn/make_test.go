package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/message"
)

// The tests here run the README's make and go run commands as a reader types them. Each runs
// with GOPROXY=off: the module cache already holds what the build needs, and a test reaches no
// network.

// hermeticEnv is the environment for a README command run by a test.
func hermeticEnv(extra ...string) []string {
	return append(os.Environ(), append([]string{"GOPROXY=off"}, extra...)...)
}

// copyRepo copies the repository's sources into a temporary directory, keeping modification
// times, with dev/node_modules linked to the repository's, so a command run there writes its
// output (bin/, .pushfn/) outside the working tree.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	skip := map[string]bool{".git": true, ".pushfn": true, "bin": true, ".aws-sam": true, "node_modules": true}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skip[d.Name()] {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatalf("copy the repository: %v", err)
	}
	if modules := filepath.Join(root, "dev", "node_modules"); dirExists(modules) {
		if err := os.Symlink(modules, filepath.Join(dst, "dev", "node_modules")); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// npm's lockfile is compared by time with the installed one: keep the times.
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}

func dirExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// findReadmeCommand returns the README command of section whose first words are prefix.
func findReadmeCommand(t *testing.T, section, prefix string) string {
	t.Helper()
	for _, c := range readmeCommands(readReadme(t)) {
		if c.section == section && (c.head() == prefix || strings.HasPrefix(c.head(), prefix+" ")) {
			return c.text
		}
	}
	t.Fatalf("README: no command %q under ## %s", prefix, section)
	return ""
}

// TestIntegrationMakeBuild runs the README's `make build` (without SAM CLI, as here) and checks
// it leaves one static linux/arm64 bootstrap per function.
func TestIntegrationMakeBuild(t *testing.T) {
	t.Parallel()
	if !awstest.Enabled() {
		t.Skipf("integration test: set %s=1 (make test does)", awstest.EnvIntegration)
	}
	if _, err := exec.LookPath("sam"); err == nil {
		t.Skip("SAM CLI is installed: make build runs sam build")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := copyRepo(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", findReadmeCommand(t, "Build", "make build"))
	cmd.Dir, cmd.Env = dir, hermeticEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, fn := range []string{"ApiFunction", "DeliverFunction", "RelayFunction"} {
		path := filepath.Join("bin", fn, "bootstrap")
		if !strings.Contains(string(out), "built "+path) {
			t.Errorf("make build did not say it built %s:\n%s", path, out)
		}
		f, err := elf.Open(filepath.Join(dir, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s: machine %s %s, want EM_AARCH64 ELFCLASS64", path, f.Machine, f.Class)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: dynamically linked (%s), want static", path, p.Type)
			}
		}
		_ = f.Close()
	}
}

// TestIntegrationMakeInvoke runs the README's `make invoke FN=RelayFunction
// EVENT=events/eventbridge.json` through make, on a table and queue of its own (ARGS), and
// checks the relay accepted the event's message under the id the event's id gives it.
func TestIntegrationMakeInvoke(t *testing.T) {
	t.Parallel()
	awstest.Config(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	table, queueName := dropStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The sample's target, hooks.example.com, is only queued: nothing delivers from this queue.
	command := findReadmeCommand(t, "Quick start", "make invoke FN=RelayFunction EVENT=events/eventbridge.json")
	args := fmt.Sprintf(" ARGS='--table %s --queue %s --build-dir %s'", table, queueName, filepath.Join(t.TempDir(), "build"))
	cmd := exec.CommandContext(ctx, "sh", "-c", command+args)
	cmd.Dir, cmd.Env = root, hermeticEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr:\n%s", command, err, out, tail(stderr.String(), 30))
	}
	raw, err := os.ReadFile(filepath.Join(root, "events", "eventbridge.json"))
	if err != nil {
		t.Fatal(err)
	}
	var event struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &event); err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Messages []status `json:"messages"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Messages) != 1 {
		t.Fatalf("%s printed %s, want the relay's response with one message (%v)", command, out, err)
	}
	if got, want := resp.Messages[0], message.IDForKey(event.ID); got.ID != want || got.Status != "accepted" {
		t.Errorf("relayed %+v, want id %s (from the event id) accepted", got, want)
	}
}

// TestIntegrationReadmeEmulators runs the README's four commands that keep the emulators up
// between test runs, in a copy of the repository with emulators of its own on free ports:
// make emulators-up starts them, the eval exports their endpoints, setup creates the table and
// queues there, and make emulators-down stops them.
func TestIntegrationReadmeEmulators(t *testing.T) {
	t.Parallel()
	awstest.Config(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if !dirExists(filepath.Join(root, "dev", "node_modules")) {
		t.Fatal("dev/node_modules is missing: make test installs the emulators there before the tests run")
	}
	dir := copyRepo(t, root)
	ports := freePorts(t, 2)
	sqsPort, ddbPort := ports[0], ports[1]
	var env []string
	for _, kv := range hermeticEnv("PUSHFN_SQS_PORT="+strconv.Itoa(sqsPort), "PUSHFN_DYNAMODB_PORT="+strconv.Itoa(ddbPort)) {
		if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL_") {
			env = append(env, kv)
		}
	}
	up := findReadmeCommand(t, "Test", "make emulators-up")
	eval := findReadmeCommand(t, "Test", `eval "$(go run ./cmd/pushfn emulators env)"`)
	setup := findReadmeCommand(t, "Test", "go run ./cmd/pushfn setup")
	down := findReadmeCommand(t, "Test", "make emulators-down")
	sh := func(ctx context.Context, script string) (string, error) {
		cmd := exec.CommandContext(ctx, "sh", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := sh(ctx, down); err != nil {
			t.Errorf("%s at cleanup: %v\n%s", down, err, out)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	script := strings.Join([]string{"set -e", up, eval, `echo "endpoints $AWS_ENDPOINT_URL_SQS $AWS_ENDPOINT_URL_DYNAMODB"`, setup}, "\n")
	out, err := sh(ctx, script)
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	sqsURL, ddbURL := "http://127.0.0.1:"+strconv.Itoa(sqsPort), "http://127.0.0.1:"+strconv.Itoa(ddbPort)
	if want := "endpoints " + sqsURL + " " + ddbURL; !strings.Contains(out, want) {
		t.Errorf("after %s the shell has no %q:\n%s", eval, want, out)
	}
	// setup prints export lines for what it created.
	exports := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			exports[k] = v
		}
	}
	cfg := awstest.Config(t)
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddbURL)
		o.DisableValidateResponseChecksum = true
	})
	if _, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(exports["TABLE_NAME"])}); err != nil {
		t.Errorf("table %q after %s: %v\n%s", exports["TABLE_NAME"], setup, err, out)
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(sqsURL) })
	if _, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(exports["QUEUE_URL"])}); err != nil {
		t.Errorf("queue %q after %s: %v\n%s", exports["QUEUE_URL"], setup, err, out)
	}
	if out, err := sh(ctx, down); err != nil {
		t.Fatalf("%s: %v\n%s", down, err, out)
	}
	for _, port := range []int{sqsPort, ddbPort} {
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
			conn.Close()
			t.Errorf("port %d still answers after %s", port, down)
		}
	}
}

// freePorts returns n distinct loopback ports nothing listens on.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until all are chosen, so they differ
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}
