package emulator

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// install provides what the emulators in todo need: Node and npm or Java from Debian's packages
// when the command is missing, and the pinned npm packages (npm ci) when dev/node_modules is
// absent or older than dev/package-lock.json.
func install(ctx context.Context, o Options, todo []spec) error {
	// Up calls with different state directories may share one dev/node_modules.
	unlock, err := lock(filepath.Join(o.Root, ".pushfn"), "install.lock")
	if err != nil {
		return err
	}
	defer unlock()
	var pkgs []string
	for _, s := range todo {
		switch s.name {
		case SQS:
			if !haveCommand("node") || !haveCommand("npm") {
				pkgs = append(pkgs, "nodejs", "npm")
			}
		case DynamoDB:
			if !haveCommand("java") {
				pkgs = append(pkgs, "openjdk-17-jre-headless")
			}
		}
	}
	if !haveCommand("npm") && !containsString(pkgs, "npm") {
		pkgs = append(pkgs, "nodejs", "npm") // npm ci needs it either way
	}
	if len(pkgs) > 0 {
		if err := aptInstall(ctx, o, pkgs); err != nil {
			return err
		}
	}
	stale, err := npmStale(o.Root)
	if err != nil {
		return err
	}
	if !stale {
		return nil
	}
	fmt.Fprintln(o.Progress, "installing the pinned emulators: npm ci in dev/")
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = filepath.Join(o.Root, "dev")
	var buf limitedBuffer
	out := io.MultiWriter(o.Progress, &buf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in dev/: %w\n%s", err, buf.String())
	}
	return nil
}

// npmStale reports whether dev/node_modules needs an npm ci.
func npmStale(root string) (bool, error) {
	lockFile, err := os.Stat(filepath.Join(root, "dev", "package-lock.json"))
	if err != nil {
		return false, fmt.Errorf("emulator pins: %w", err)
	}
	// npm ci writes node_modules/.package-lock.json last; its absence means no complete install.
	installed, err := os.Stat(filepath.Join(root, "dev", "node_modules", ".package-lock.json"))
	if err != nil {
		return true, nil
	}
	return installed.ModTime().Before(lockFile.ModTime()), nil
}

func haveCommand(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// aptInstall installs Debian packages, through sudo when not root.
func aptInstall(ctx context.Context, o Options, pkgs []string) error {
	if !haveCommand("apt-get") {
		return fmt.Errorf("missing %v and no apt-get to install them: install Node.js 20+ with npm and Java 17+", pkgs)
	}
	var prefix []string
	if os.Geteuid() != 0 {
		if !haveCommand("sudo") {
			return fmt.Errorf("missing %v: installing them needs root (or sudo)", pkgs)
		}
		prefix = []string{"sudo", "-n"}
	}
	fmt.Fprintf(o.Progress, "installing %v from Debian's packages\n", pkgs)
	for _, args := range [][]string{
		{"apt-get", "update"},
		append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...),
	} {
		argv := append(append([]string{}, prefix...), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		var buf limitedBuffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%v: %w\n%s", argv, err, buf.String())
		}
	}
	return nil
}

// limitedBuffer keeps the last 8 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if over := len(l.b) - 8<<10; over > 0 {
		l.b = l.b[over:]
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// browsers are the names Debian's chromium package, and other distributions', install Chromium as.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Browser returns the path of a Chromium the status page's browser test can run headless,
// installing Debian's chromium package first when none is on the PATH (as the emulators get Node
// and Java), so that make test needs nothing installed by hand.
func Browser(ctx context.Context, o Options) (string, error) {
	if path, ok := findBrowser(exec.LookPath); ok {
		return path, nil
	}
	o, err := o.withDefaults()
	if err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(o.Root, ".pushfn"), "install.lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if path, ok := findBrowser(exec.LookPath); ok { // installed while this waited for the lock
		return path, nil
	}
	if err := aptInstall(ctx, o, []string{"chromium"}); err != nil {
		return "", fmt.Errorf("install chromium: %w", err)
	}
	if path, ok := findBrowser(exec.LookPath); ok {
		return path, nil
	}
	return "", fmt.Errorf("chromium installed, but none of %v is on the PATH", browsers)
}

// findBrowser returns the first of browsers that lookPath finds.
func findBrowser(lookPath func(string) (string, error)) (string, bool) {
	for _, name := range browsers {
		if path, err := lookPath(name); err == nil {
			return path, true
		}
	}
	return "", false
}
