// Package lambdarun runs a function's real bootstrap binary as AWS Lambda would, without AWS or
// Docker: it serves the Lambda Runtime API the binary polls, one invoke at a time per process, and
// enforces the function's timeout and memory size as far as a process allows.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package lambdarun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Lambda's limits that a local run keeps.
const (
	// MaxPayload is the largest request or response of a synchronous invoke.
	MaxPayload = 6 * 1024 * 1024
	// DefaultTimeout and DefaultMemoryMB are Lambda's defaults when a template sets neither.
	DefaultTimeout  = 3 * time.Second
	DefaultMemoryMB = 128
)

// ErrClosed is returned by Invoke once the Function or Pool is closed.
var ErrClosed = errors.New("lambdarun: closed")

// ErrPayloadTooLarge is returned by Invoke for a payload above MaxPayload, as Lambda refuses it.
var ErrPayloadTooLarge = errors.New("lambdarun: request payload above 6 MB")

// Error types Lambda reports for failures outside the function's own code.
const (
	ErrorTypeTimeout      = "Sandbox.Timedout"
	ErrorTypeExit         = "Runtime.ExitError"
	ErrorTypeOutOfMemory  = "Runtime.OutOfMemory"
	ErrorTypeResponseSize = "Function.ResponseSizeTooLarge"
)

// FunctionError is an invoke's failure as Lambda reports it: an error the function returned or
// panicked with, an init error, or a timeout, crash or out-of-memory kill of the process. Its JSON
// form is the body `aws lambda invoke` and `sam local invoke` print.
type FunctionError struct {
	Message    string          `json:"errorMessage"`
	Type       string          `json:"errorType"`
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// Config describes one function as the template declares it.
type Config struct {
	Name     string            // function name, as AWS_LAMBDA_FUNCTION_NAME; the template's logical id
	Path     string            // the bootstrap binary
	Timeout  time.Duration     // DefaultTimeout when zero
	MemoryMB int               // DefaultMemoryMB when zero
	Region   string            // AWS_REGION; us-east-1 when empty
	Env      map[string]string // the function's variables; Lambda's reserved variables win
	Output   io.Writer         // the process's stdout and stderr; os.Stderr when nil
	Report   bool              // write Lambda's START, END and REPORT lines to Output
	// Invoked, when set, is called after each invoke the process ran (its response, its error,
	// or its timeout), with what Lambda bills for it. Calls for one process come one at a time;
	// a Pool's processes call it concurrently.
	Invoked func(Invoked)
}

// Invoked is one invoke as Lambda bills it.
type Invoked struct {
	Function  string        // the Config's Name
	RequestID string        // the invoke's request id
	Duration  time.Duration // from handing the event to the runtime to its response or error
	Init      time.Duration // the process's init, on its first invoke only; zero after
	MemoryMB  int           // the memory size billed
}

// Billed returns the duration Lambda bills for the invoke: its init (billed for an OS-only
// runtime such as provided.al2023, and for every runtime since August 2025) and its duration,
// rounded up to the millisecond.
func (i Invoked) Billed() time.Duration {
	return (i.Init + i.Duration + time.Millisecond - 1).Truncate(time.Millisecond)
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MemoryMB <= 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Name == "" {
		c.Name = "function"
	}
	if c.Output == nil {
		c.Output = os.Stderr
	}
	return c
}

// environ is the process environment Lambda gives a provided.al2023 function: its reserved
// variables over the function's own.
func (c Config) environ(runtimeAPI string) []string {
	env := make(map[string]string, len(c.Env)+20)
	for k, v := range c.Env {
		env[k] = v
	}
	reserved := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME":        c.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": fmt.Sprint(c.MemoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     fmt.Sprint(int(c.Timeout.Round(time.Second) / time.Second)),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + c.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      time.Now().UTC().Format("2006/01/02") + "/[$LATEST]local",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      c.Region,
		"AWS_DEFAULT_REGION":              c.Region,
		"_HANDLER":                        "bootstrap",
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		// Lambda sets no GOMEMLIMIT; here it keeps the Go heap inside the memory size, which
		// the process watchdog enforces.
		"GOMEMLIMIT": fmt.Sprintf("%dMiB", c.MemoryMB*9/10),
	}
	if _, ok := env["PATH"]; !ok {
		reserved["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	if _, ok := c.Env["GOMEMLIMIT"]; ok {
		delete(reserved, "GOMEMLIMIT")
	}
	for k, v := range reserved {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// Passthrough returns the variables of the calling environment that a local function needs to
// reach AWS or the emulators: credentials, region, profile and AWS_ENDPOINT_URL*. sam local
// passes the same.
func Passthrough(environ []string) map[string]string {
	keep := map[string]bool{
		"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
		"AWS_PROFILE": true, "AWS_CONFIG_FILE": true, "AWS_SHARED_CREDENTIALS_FILE": true,
		"AWS_ENDPOINT_URL": true, "HOME": true, "PATH": true,
	}
	out := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if keep[k] || strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
			out[k] = v
		}
	}
	return out
}
