package lambdarun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// initTimeout is how long Lambda lets a runtime initialise before it gives up on it.
const initTimeout = 10 * time.Second

// Function runs one process of a function's bootstrap binary under its own Runtime API server.
// It serves one invoke at a time, as a Lambda execution environment does, and starts the process
// on the first invoke and again after the process exits, times out or runs out of memory.
type Function struct {
	cfg   Config
	out   io.Writer
	serve sync.Mutex // held for a whole Invoke: one invoke at a time

	mu     sync.Mutex // guards the fields below
	proc   *process
	closed bool
}

// process is one run of the bootstrap binary with the Runtime API server it polls. Each run has
// its own server, so nothing a killed process left behind can take a later invocation.
type process struct {
	name, arn  string
	cmd        *exec.Cmd
	srv        *http.Server
	started    time.Time
	next       chan *invocation // a GET .../invocation/next takes the invocation from here
	ready      chan struct{}    // closed at the process's first GET .../invocation/next
	readyOnce  sync.Once
	initFailed chan struct{} // closed when the runtime posts an init error
	initOnce   sync.Once
	initErr    *FunctionError // set before initFailed closes
	initDur    time.Duration  // set before ready closes
	done       chan struct{}  // closed once the process has exited
	exitErr    error          // set before done closes
	oom        atomic.Bool
	maxRSS     atomic.Int64 // bytes
	reported   bool         // the init duration was reported; guarded by Function.serve
	initBilled bool         // the init duration was passed to Config.Invoked; guarded by Function.serve

	mu      sync.Mutex
	current *invocation // the invocation in progress
}

// invocation is one invoke handed to the process.
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	result   chan *FunctionError // receives the function's error, or nil once response is set
	response []byte
	once     sync.Once
}

func (inv *invocation) complete(response []byte, fnErr *FunctionError) {
	inv.once.Do(func() {
		inv.response = response
		inv.result <- fnErr
	})
}

// NewFunction returns a Function for cfg. It starts nothing until the first Invoke.
func NewFunction(cfg Config) *Function {
	cfg = cfg.withDefaults()
	return &Function{cfg: cfg, out: syncWriter(cfg.Output)}
}

// Invoke runs one invoke of the function with payload as its event and returns the function's
// response, or the FunctionError Lambda would report (the function's own error, an init error,
// a timeout, an exit or an out-of-memory kill), or err when the invoke could not run at all. A
// timed-out, crashed or cancelled process is killed; the next Invoke starts a fresh one.
func (f *Function) Invoke(ctx context.Context, payload []byte) (response []byte, fnErr *FunctionError, err error) {
	if len(payload) > MaxPayload {
		return nil, nil, ErrPayloadTooLarge
	}
	f.serve.Lock()
	defer f.serve.Unlock()
	// A warm process may exit between invokes (a runtime exits after a panic); as Lambda does,
	// the invoke then goes to a fresh process.
	for range 2 {
		p, err := f.process()
		if err != nil {
			return nil, nil, err
		}
		inv := &invocation{id: newRequestID(), payload: payload, result: make(chan *FunctionError, 1)}
		if fnErr, err := f.awaitInit(ctx, p, inv.id); fnErr != nil || err != nil {
			return nil, fnErr, err
		}
		start := time.Now()
		inv.deadline = start.Add(f.cfg.Timeout)
		p.setCurrent(inv)
		if f.cfg.Report {
			fmt.Fprintf(f.out, "START RequestId: %s Version: $LATEST\n", inv.id)
		}
		response, fnErr, err = f.await(ctx, p, inv)
		p.setCurrent(nil)
		if errors.Is(err, errNotTaken) {
			continue
		}
		took := time.Since(start)
		if f.cfg.Report {
			f.report(p, inv.id, took)
		}
		if f.cfg.Invoked != nil && err == nil {
			billed := Invoked{Function: f.cfg.Name, RequestID: inv.id, Duration: took, MemoryMB: f.cfg.MemoryMB}
			if !p.initBilled {
				p.initBilled, billed.Init = true, p.initDur
			}
			f.cfg.Invoked(billed)
		}
		return response, fnErr, err
	}
	return nil, nil, fmt.Errorf("invoke %s: %w", f.cfg.Name, errNotTaken)
}

// errNotTaken says the process exited without taking the invocation.
var errNotTaken = errors.New("the runtime exited before taking the invocation")

// awaitInit waits until the process asks for its first invocation.
func (f *Function) awaitInit(ctx context.Context, p *process, id string) (*FunctionError, error) {
	timer := time.NewTimer(initTimeout)
	defer timer.Stop()
	select {
	case <-p.ready:
		return nil, nil
	case <-p.initFailed:
		f.kill(p)
		return p.initErr, nil
	case <-p.done:
		return f.exitError(p, id), nil
	case <-timer.C:
		f.kill(p)
		return &FunctionError{Type: ErrorTypeTimeout, Message: fmt.Sprintf("RequestId: %s Error: init timed out after %.2f seconds", id, initTimeout.Seconds())}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("invoke %s: waiting for init: %w", f.cfg.Name, context.Cause(ctx))
	}
}

// await hands inv to the process and waits for its outcome.
func (f *Function) await(ctx context.Context, p *process, inv *invocation) ([]byte, *FunctionError, error) {
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	handed := p.next
	for {
		select {
		case handed <- inv:
			handed = nil
		case fnErr := <-inv.result:
			return inv.response, fnErr, nil
		case <-p.done:
			select {
			case fnErr := <-inv.result:
				return inv.response, fnErr, nil
			default:
			}
			if handed != nil {
				return nil, nil, errNotTaken
			}
			return nil, f.exitError(p, inv.id), nil
		case <-timer.C:
			f.kill(p)
			return nil, &FunctionError{Type: ErrorTypeTimeout, Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, f.cfg.Timeout.Seconds())}, nil
		case <-ctx.Done():
			if handed == nil { // the process is running the invocation: stop it
				f.kill(p)
			}
			return nil, nil, fmt.Errorf("invoke %s %s: %w", f.cfg.Name, inv.id, context.Cause(ctx))
		}
	}
}

func (f *Function) exitError(p *process, id string) *FunctionError {
	select {
	case <-p.initFailed:
		return p.initErr
	default:
	}
	typ := ErrorTypeExit
	if p.oom.Load() {
		typ = ErrorTypeOutOfMemory
	}
	return &FunctionError{Type: typ, Message: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %v", id, p.exitErr)}
}

// report writes Lambda's END and REPORT lines; the first invoke of a process reports its init.
func (f *Function) report(p *process, id string, d time.Duration) {
	peak := p.maxRSS.Load()
	if _, now, ok := memory(p.cmd.Process.Pid); ok && now > peak {
		peak = now
	}
	line := fmt.Sprintf("END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		id, id, float64(d.Microseconds())/1000, d.Milliseconds()+1, f.cfg.MemoryMB, (peak+(1<<20)-1)>>20)
	if !p.reported {
		p.reported = true
		line += fmt.Sprintf("\tInit Duration: %.2f ms", float64(p.initDur.Microseconds())/1000)
	}
	fmt.Fprintln(f.out, line)
}

func (p *process) setCurrent(inv *invocation) {
	p.mu.Lock()
	p.current = inv
	p.mu.Unlock()
}

// process returns the running process, starting one when there is none.
func (f *Function) process() (*process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if f.proc != nil {
		select {
		case <-f.proc.done:
		default:
			return f.proc, nil
		}
	}
	p, err := f.start()
	if err != nil {
		return nil, err
	}
	f.proc = p
	return p, nil
}

// start serves a Runtime API on a free loopback port and starts the binary against it.
func (f *Function) start() (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API for %s: %w", f.cfg.Name, err)
	}
	cmd := exec.Command(f.cfg.Path)
	cmd.Dir = filepath.Dir(f.cfg.Path)
	cmd.Env = append(f.cfg.environ(ln.Addr().String()), "LAMBDA_TASK_ROOT="+cmd.Dir)
	// Whole lines only: the processes of a Pool share one Output, and a line one of them writes
	// (an EMF document) must not be split by another's.
	out := &lineWriter{w: f.out}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	isolate(cmd)
	p := &process{
		name:       f.cfg.Name,
		arn:        fmt.Sprintf("arn:aws:lambda:%s:123456789012:function:%s", f.cfg.Region, f.cfg.Name),
		cmd:        cmd,
		next:       make(chan *invocation),
		ready:      make(chan struct{}),
		initFailed: make(chan struct{}),
		done:       make(chan struct{}),
	}
	p.srv = &http.Server{Handler: p.routes(), ReadHeaderTimeout: 10 * time.Second}
	p.started = time.Now()
	go func() { _ = p.srv.Serve(ln) }()
	if err := cmd.Start(); err != nil {
		_ = p.srv.Close()
		return nil, fmt.Errorf("start %s (%s): %w", f.cfg.Name, f.cfg.Path, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		out.flush()
		_ = p.srv.Close()
		close(p.done)
	}()
	go f.watch(p)
	return p, nil
}

// watch samples the process's memory while it runs and kills it above the memory size, as
// Lambda does.
func (f *Function) watch(p *process) {
	limit := int64(f.cfg.MemoryMB) << 20
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
			rss, peak, ok := memory(p.cmd.Process.Pid)
			if !ok {
				continue
			}
			if peak > p.maxRSS.Load() {
				p.maxRSS.Store(peak)
			}
			if rss > limit {
				p.oom.Store(true)
				f.kill(p)
				return
			}
		}
	}
}

// kill ends the process and everything it started, and waits for it to exit.
func (f *Function) kill(p *process) {
	killGroup(p.cmd)
	<-p.done
}

// Close kills the process and stops its Runtime API server. Invokes after Close return ErrClosed.
func (f *Function) Close() error {
	f.mu.Lock()
	f.closed = true
	p := f.proc
	f.mu.Unlock()
	if p != nil {
		f.kill(p)
	}
	return nil
}

// The Runtime API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
const (
	headerRequestID   = "Lambda-Runtime-Aws-Request-Id"
	headerDeadline    = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID     = "Lambda-Runtime-Trace-Id"
	headerErrorType   = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody  = "Lambda-Runtime-Function-Error-Body"
)

func (p *process) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", p.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", p.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", p.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", p.handleInitError)
	return mux
}

func (p *process) handleNext(w http.ResponseWriter, r *http.Request) {
	p.readyOnce.Do(func() {
		p.initDur = time.Since(p.started)
		close(p.ready)
	})
	select {
	case inv := <-p.next:
		h := w.Header()
		h.Set(headerRequestID, inv.id)
		h.Set(headerDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set(headerFunctionARN, p.arn)
		h.Set(headerTraceID, newTraceID())
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
	}
}

// invocation returns the invocation in progress with the path's id, or answers 400 as Lambda does.
func (p *process) invocation(w http.ResponseWriter, r *http.Request) *invocation {
	p.mu.Lock()
	inv := p.current
	p.mu.Unlock()
	if inv == nil || inv.id != r.PathValue("id") {
		writeStatus(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return nil
	}
	return inv
}

func (p *process) handleResponse(w http.ResponseWriter, r *http.Request) {
	inv := p.invocation(w, r)
	if inv == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayload+1))
	switch {
	case err != nil:
		writeStatus(w, http.StatusBadRequest, "InvalidRequest", "reading the response failed")
		inv.complete(nil, &FunctionError{Type: ErrorTypeExit, Message: fmt.Sprintf("RequestId: %s Error: reading the response: %v", inv.id, err)})
		return
	case len(body) > MaxPayload:
		writeStatus(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload above 6 MB")
		inv.complete(nil, &FunctionError{Type: ErrorTypeResponseSize, Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayload)})
		return
	}
	// aws-lambda-go reports an error met while streaming the response in trailers.
	if typ := r.Trailer.Get(headerErrorType); typ != "" {
		fnErr := &FunctionError{Type: typ}
		if raw, err := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody)); err == nil {
			_ = json.Unmarshal(raw, fnErr)
		}
		inv.complete(nil, fnErr)
	} else {
		inv.complete(body, nil)
	}
	writeStatus(w, http.StatusAccepted, "", "")
}

func (p *process) handleError(w http.ResponseWriter, r *http.Request) {
	inv := p.invocation(w, r)
	if inv == nil {
		return
	}
	inv.complete(nil, readError(r))
	writeStatus(w, http.StatusAccepted, "", "")
}

func (p *process) handleInitError(w http.ResponseWriter, r *http.Request) {
	fnErr := readError(r)
	p.initOnce.Do(func() {
		p.initErr = fnErr
		close(p.initFailed)
	})
	writeStatus(w, http.StatusAccepted, "", "")
}

// readError decodes the error document a runtime posts; a body that is not one becomes the
// message, typed by the Lambda-Runtime-Function-Error-Type header.
func readError(r *http.Request) *FunctionError {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxPayload))
	fnErr := &FunctionError{}
	if err := json.Unmarshal(body, fnErr); err != nil || (fnErr.Type == "" && fnErr.Message == "") {
		fnErr = &FunctionError{Message: string(body)}
	}
	if fnErr.Type == "" {
		fnErr.Type = r.Header.Get(headerErrorType)
	}
	if fnErr.Type == "" {
		fnErr.Type = "Unhandled"
	}
	return fnErr
}

func writeStatus(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code == http.StatusAccepted {
		_, _ = io.WriteString(w, `{"status":"OK"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(FunctionError{Type: typ, Message: msg})
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%x;Parent=%x;Sampled=0", time.Now().Unix(), b[:12], b[12:])
}

// syncWriter serialises writes from several processes and the report lines to one writer.
func syncWriter(w io.Writer) io.Writer {
	switch w.(type) {
	case *os.File, *lockedWriter:
		return w
	}
	return &lockedWriter{w: w}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lineWriter passes on what one process writes in whole lines, one Write per run of lines, so
// that the lines of processes sharing a writer do not interleave. A line longer than
// maxLineBuffer is passed on in parts.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

const maxLineBuffer = 256 << 10

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	end := bytes.LastIndexByte(l.buf, '\n') + 1
	if end == 0 && len(l.buf) > maxLineBuffer {
		end = len(l.buf)
	}
	if end == 0 {
		return len(p), nil
	}
	_, err := l.w.Write(l.buf[:end])
	l.buf = append(l.buf[:0], l.buf[end:]...)
	return len(p), err
}

// flush passes on a last line that has no newline.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_, _ = l.w.Write(l.buf)
		l.buf = nil
	}
}
