//go:build !linux

package lambdarun

import "os/exec"

func isolate(cmd *exec.Cmd) {}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// memory is not measured outside Linux, so the memory size is not enforced there.
func memory(pid int) (rss, peak int64, ok bool) { return 0, 0, false }
