package push

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fdTableSize reads how many descriptors the process's table holds (FDSize in /proc/self/status).
func fdTableSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

func TestReserveFDsGrowsTheTable(t *testing.T) {
	// Not parallel: it reads and grows a process-wide table.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := fdTableSize(t) * 4
	if uint64(want) >= lim.Cur {
		t.Skipf("the descriptor limit (%d) leaves no room to grow the table from %d", lim.Cur, fdTableSize(t))
	}
	open := openFDs(t)
	ReserveFDs(want)
	if got := fdTableSize(t); got < want {
		t.Errorf("after ReserveFDs(%d) the table holds %d descriptors", want, got)
	}
	if got := openFDs(t); got != open {
		t.Errorf("ReserveFDs changed the open descriptors from %d to %d", open, got)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
