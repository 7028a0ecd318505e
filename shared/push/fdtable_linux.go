package push

import (
	"os"
	"syscall"
)

// ReserveFDs grows the process's file descriptor table to hold n descriptors more than are open
// now. Call it once at start, before the first pushes, with room for every connection the
// process may open (the deliver function passes MAX_CONCURRENCY plus a margin). Linux doubles the table when a new descriptor does not fit, and in a multi-threaded
// process each growth waits for an RCU grace period (10 ms or more) inside the call that opened
// the descriptor: a cold invocation opening hundreds of connections stalled on each doubling.
// Grown once at start, the table costs that wait at init instead. It is best effort, capped by
// the descriptor limit. It changes the whole process, so no constructor calls it for you.
func ReserveFDs(n int) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return
	}
	defer f.Close()
	base := int(f.Fd())
	want := base + n
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && uint64(want) >= lim.Cur {
		want = int(lim.Cur) - 1
	}
	if want <= base {
		return
	}
	// F_DUPFD takes the lowest free descriptor at or above want, growing the table to hold it.
	fd, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(base), syscall.F_DUPFD_CLOEXEC, uintptr(want))
	if errno == 0 {
		_ = syscall.Close(int(fd))
	}
}
