// Command pushfn is the developer CLI that runs pushfn on one machine without AWS: it starts the
// local SQS and DynamoDB emulators and creates the table and queues in them, runs the whole stack
// (the api function behind a local HTTP API, the deliver function fed from the queue), invokes a
// function binary once with an event as sam local invoke would, serves a loopback push receiver,
// moves the dead-letter queue's messages back to the delivery queue (locally or in a deployed
// stack), benchmarks the deliver handler and a plain Go worker pool on one batch, and prices a
// workload run through the local stack in AWS per million pushes. It is never deployed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands lists the subcommands; adding one is one line here and a cmd/pushfn/<name>.go file.
var commands = []command{
	{"emulators", "start, stop or inspect the local SQS and DynamoDB emulators", emulators},
	{"setup", "create the table and queues (with dead-letter queue) in the emulators", setup},
	{"run", "run pushfn locally: emulators, API on http://127.0.0.1:3000, delivery from the queue", func(ctx context.Context, args []string) error {
		return runCommand(ctx, args, os.Stdout, os.Stderr)
	}},
	{"invoke", "build a function and invoke it once with an event, as sam local invoke does", func(ctx context.Context, args []string) error {
		return invokeCommand(ctx, args, os.Stdout, os.Stderr)
	}},
	{"receiver", "a loopback push receiver that prints, verifies and counts pushes", receiverCmd},
	{"redrive", "move the dead-letter queue's messages back to the delivery queue (a deployed stack or a local run)", redriveCmd},
	{"cost", "run a workload through the local stack and print its cost in AWS per million pushes", func(ctx context.Context, args []string) error {
		return costCommand(ctx, args, os.Stdout, os.Stderr)
	}},
	{"bench", "bench deliver|pool: time the deliver handler, or a plain Go worker pool, on one synthetic batch", benchCmd},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	var code exitError
	if errors.As(err, &code) {
		os.Exit(int(code))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushfn:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return flag.ErrHelp
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:])
		}
	}
	usage()
	return fmt.Errorf("unknown command %q", args[0])
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pushfn <command> [flags] [arguments]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun pushfn <command> -h for a command's flags.")
}
