package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	statuspage "github.com/pushfn/pushfn/shared/local/status"
)

// defaultStatusPort is the port of the status page when --status-port is not given.
const defaultStatusPort = 3001

// statusOff is the --status-port that serves no status page.
const statusOff = -1

// statusAddr returns the address the status page is served on, "" when port is statusOff, or an
// error naming the flag for a port out of range.
func statusAddr(host string, port int) (string, error) {
	switch {
	case port == statusOff:
		return "", nil
	case port < 0 || port > 65535:
		return "", fmt.Errorf("--status-port: %d is not a port (0 to 65535, 0 for any free one, %d for no status page)", port, statusOff)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// statusPage is a local run's status page: the board its figures are kept on and the listener
// it is served from; a zero statusPage serves nothing.
type statusPage struct {
	board *statuspage.Board
	ln    net.Listener
	srv   *http.Server
}

// listenStatus takes the status page's address before anything starts, so that a port in use
// fails the run at once; addr "" serves no page.
func listenStatus(addr string) (*statusPage, error) {
	p := &statusPage{board: &statuspage.Board{}}
	if addr == "" {
		return p, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve the status page: %w (another pushfn run? choose another --status-port, or %d for none)", err, statusOff)
	}
	p.ln = ln
	return p, nil
}

// tap returns the writer a function's output goes through, so the board reads its metrics. The
// function's processes share it; lambdarun hands it each process's output in whole lines, so
// their lines never interleave. Only a line longer than lambdarun's 256 KiB line buffer is cut,
// and may then spoil the line another process writes next, which the page counts as unreadable.
func (p *statusPage) tap(w io.Writer) io.Writer { return p.board.Tap(w) }

// serve starts serving the page, counting the records of table and listing the events bus
// received.
func (p *statusPage) serve(cfg aws.Config, table string, bus statuspage.EventSource) {
	if p.ln == nil {
		return
	}
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true // DynamoDB Local sends no CRC32 the SDK accepts
	})
	p.board.Table = &statuspage.Table{API: ddb, Name: table}
	p.board.Events = bus
	p.srv = &http.Server{Handler: p.board.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(p.ln) }()
}

// url is the page's address for the banner, "" when there is no page.
func (p *statusPage) url() string {
	if p.ln == nil {
		return ""
	}
	return "http://" + p.ln.Addr().String()
}

// close stops serving the page.
func (p *statusPage) close() {
	switch {
	case p.srv != nil:
		_ = p.srv.Close()
	case p.ln != nil:
		_ = p.ln.Close()
	}
}
