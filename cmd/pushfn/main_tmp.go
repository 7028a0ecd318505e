package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func main() {
	var err error
	switch os.Args[1] {
	case "run":
		err = runCommand(context.Background(), os.Args[2:], os.Stdout, os.Stderr)
	case "invoke":
		err = invokeCommand(context.Background(), os.Args[2:], os.Stdout, os.Stderr)
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
