package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

const invokeUsage = `usage: pushfn invoke <LogicalId> [-e events/<file>.json] [--env-vars env.json]

Builds the function for this machine and invokes it once under pushfn's Lambda Runtime API,
with the template's environment, as sam local invoke does: the function's logs go to stderr,
its response (or error) to stdout. Exits 1 on a function error.`

// invokeCommand implements `pushfn invoke`.
func invokeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, invokeUsage); fs.PrintDefaults() }
	eventPath := fs.String("e", "", "the event: a JSON file, or - for stdin (default {})")
	fs.StringVar(eventPath, "event", "", "same as -e")
	envVars := fs.String("env-vars", "", "a JSON file of variables, in the sam local invoke --env-vars format")
	table := fs.String("table", defaultTable, "the DynamoDB table of the local stack")
	queueName := fs.String("queue", defaultQueue, "the SQS queue of the local stack")
	builds := fs.String("build-dir", "", "where to build the function (default .pushfn/build/invoke in the repository)")
	// The logical id comes first, as with sam local invoke; flags may follow it.
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := fs.Parse(args); err != nil {
			return err
		}
		fs.Usage()
		return exitError(2)
	}
	logicalID := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return exitError(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushfn invoke: unexpected %q\n", fs.Arg(0))
		return exitError(2)
	}
	event, err := readEvent(*eventPath)
	if err != nil {
		return err
	}
	var file lambdarun.EnvFile
	if *envVars != "" {
		if file, err = lambdarun.ReadEnvFile(*envVars); err != nil {
			return err
		}
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	functions, mapping, err := loadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	if *builds == "" {
		*builds = filepath.Join(root, buildDir, "invoke")
	}
	fn, ok := functions[logicalID]
	if !ok {
		return fmt.Errorf("no function %q in the template (functions: %s)", logicalID, strings.Join(keys(functions), ", "))
	}

	backends, err := startBackends(ctx, stderr)
	if err != nil {
		return err
	}
	defer backends.stop(stderr)
	if len(backends.started) > 0 {
		fmt.Fprintln(stderr, "The emulators were not running: started them for this invoke; they stop when it ends, with what it queued. Keep `make run` going in another terminal to keep the stack.")
	}
	stack, err := backends.create(ctx, *table, *queueName, mapping.Visibility, mapping.MaxReceives)
	if err != nil {
		return err
	}
	if stack.Secrets, err = localSecrets(filepath.Join(root, stateDir), os.Getenv); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Building %s (%s)\n", logicalID, fn.Dir)
	path, err := build(ctx, root, *builds, fn)
	if err != nil {
		return err
	}
	f := lambdarun.NewFunction(lambdarun.Config{
		Name: logicalID, Path: path, Timeout: fn.Timeout, MemoryMB: fn.MemoryMB, Region: stack.Region,
		Env: environment(fn, stack, localDefaults(), nil, file, os.Environ()), Output: stderr, Report: true,
	})
	defer f.Close()
	fmt.Fprintf(stderr, "Invoking %s (provided.al2023, timeout %s, memory %d MB)\n", logicalID, fn.Timeout, fn.MemoryMB)
	response, fnErr, err := f.Invoke(ctx, event)
	if err != nil {
		return err
	}
	if fnErr != nil {
		out, _ := json.Marshal(fnErr)
		fmt.Fprintln(stdout, string(out))
		return exitError(1)
	}
	fmt.Fprintln(stdout, string(response))
	return nil
}

func readEvent(path string) ([]byte, error) {
	var event []byte
	var err error
	switch path {
	case "":
		return []byte("{}"), nil
	case "-":
		event, err = io.ReadAll(os.Stdin)
	default:
		event, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the event: %w", err)
	}
	if !json.Valid(event) {
		return nil, fmt.Errorf("the event %s is not JSON", path)
	}
	return event, nil
}

// localDefaults are the variables a local run sets so that a loopback receiver can be a target.
func localDefaults() map[string]string {
	return map[string]string{"ALLOW_PRIVATE_TARGETS": "true", "ALLOW_HTTP_TARGETS": "true"}
}
