package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/pushfn/pushfn/shared/local/emulator"
)

// emulators runs `pushfn emulators up|down|status|env`.
func emulators(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("emulators", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 90*time.Second, "how long up waits for each emulator to answer")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: pushfn emulators [flags] up|down|status|env [sqs|dynamodb ...]

  up      install what is missing, start the emulators that are not running, wait until they answer
  down    stop the emulators that up started (those named, or both)
  status  show whether each emulator runs
  env     print export lines for AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB (eval "$(pushfn emulators env)")

Ports: PUSHFN_SQS_PORT (default 4566), PUSHFN_DYNAMODB_PORT (default 8000).

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || (fs.NArg() > 1 && fs.Arg(0) != "down") {
		fs.Usage()
		return flag.ErrHelp
	}
	o, err := emulator.OptionsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	o.Timeout = *timeout
	o.Progress = os.Stderr
	switch fs.Arg(0) {
	case "up":
		states, err := emulator.Up(ctx, o)
		for _, st := range states {
			fmt.Println(st)
		}
		return err
	case "down":
		return emulator.Down(ctx, o, fs.Args()[1:]...)
	case "status":
		states, err := emulator.Status(ctx, o)
		for _, st := range states {
			fmt.Println(st)
		}
		return err
	case "env":
		for _, kv := range o.Env() {
			fmt.Println("export " + kv)
		}
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("emulators: unknown action %q", fs.Arg(0))
	}
}
