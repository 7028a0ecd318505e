package main

import (
	"os"
	"syscall"
)

// stopWithParent asks the kernel to send this process SIGTERM when its parent exits, so that
// `go run ./cmd/pushfn run`, whose go command does not pass SIGTERM on, still stops cleanly.
func stopWithParent() {
	parent := os.Getppid()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() != parent { // the parent exited before the request took effect
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
