// Command pushfn is the developer CLI: a push receiver to try pushfn out and the delivery
// benchmark.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// commands maps each subcommand to its function.
var commands = map[string]func(ctx context.Context, args []string) error{
	"receiver": receiverCmd,
	"bench":    benchCmd,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: pushfn receiver|bench [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := commands[os.Args[1]](ctx, os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "pushfn "+os.Args[1]+":", err)
		stop()
		os.Exit(1)
	}
}
