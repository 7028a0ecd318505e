// Package faultproxy is a TCP proxy on loopback that breaks the path to an upstream on purpose:
// it adds latency, refuses connections, or lets a request through and then loses its answer, so
// tests can put a real emulator (DynamoDB Local, fauxqs) behind faults that AWS shows in
// production. Faults are switched on and off while the proxy runs.
//
// Local runs and tests only, never linked into a deployed function (see package local).
package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards every connection made to Addr to its upstream, applying the faults set at the
// time. It is safe for concurrent use.
type Proxy struct {
	upstream string
	ln       net.Listener

	latency   atomic.Int64 // nanoseconds added before each chunk sent upstream
	refuse    atomic.Bool
	dropEvery atomic.Int64 // lose every nth answer; 0: none

	answers, dropped, refused, conns atomic.Int64

	mu     sync.Mutex
	open   map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Stats counts what the proxy did since it started.
type Stats struct {
	Conns   int64 // connections accepted and forwarded
	Refused int64 // connections reset at once because Refuse was on
	Answers int64 // answers that began to come back from upstream
	Dropped int64 // answers lost after their request reached the upstream
}

// Start listens on an ephemeral loopback port and forwards to upstream (host:port).
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: upstream, ln: ln, open: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is http://Addr, for an AWS_ENDPOINT_URL_* variable.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// SetLatency delays every chunk of every request by d before it reaches the upstream; 0 removes
// the delay.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Refuse on resets every new connection at once and cuts the open ones, as a service that is
// down does; off lets connections through again.
func (p *Proxy) Refuse(on bool) {
	p.refuse.Store(on)
	if on {
		p.cutAll()
	}
}

// DropEvery loses every nth answer: the request reaches the upstream, which applies it and
// answers, but the proxy resets the client's connection at the answer's first byte, so the
// client cannot tell whether the request was applied. n <= 0 drops none.
func (p *Proxy) DropEvery(n int) { p.dropEvery.Store(int64(max(n, 0))) }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{Conns: p.conns.Load(), Refused: p.refused.Load(), Answers: p.answers.Load(), Dropped: p.dropped.Load()}
}

// Close stops listening, cuts every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.cutAll()
	p.wg.Wait()
	return err
}

// pair is one proxied connection: the client's and the upstream's ends.
type pair struct {
	client net.Conn
	once   sync.Once
	mu     sync.Mutex    // guards upstream until it is attached, and the closing of cut
	cut    chan struct{} // closed by reset
	// upstream is the upstream end, once dialled and attached; the pumps read it only after.
	upstream net.Conn
	// asked is set when request bytes went upstream since the last answer began, so the next
	// upstream bytes start a new answer.
	asked atomic.Bool
}

// reset closes both ends, the client's with a TCP RST so it sees a reset, not a clean end.
func (c *pair) reset() {
	c.once.Do(func() {
		c.mu.Lock()
		close(c.cut)
		up := c.upstream
		c.mu.Unlock()
		if tc, ok := c.client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.client.Close()
		if up != nil {
			_ = up.Close()
		}
	})
}

// attach sets the pair's upstream end; when the pair was cut meanwhile (Refuse, Close) it
// closes up instead and reports false.
func (c *pair) attach(up net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.cut:
		_ = up.Close()
		return false
	default:
		c.upstream = up
		return true
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		c := &pair{client: conn, cut: make(chan struct{})}
		if p.refuse.Load() {
			p.refused.Add(1)
			c.reset()
			continue
		}
		if !p.track(c) {
			c.reset()
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track registers c so Refuse and Close can cut it; false when the proxy is closed.
func (p *Proxy) track(c *pair) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) cutAll() {
	p.mu.Lock()
	open := make([]*pair, 0, len(p.open))
	for c := range p.open {
		open = append(open, c)
	}
	p.mu.Unlock()
	for _, c := range open {
		c.reset()
	}
}

func (p *Proxy) forward(c *pair) {
	defer p.wg.Done()
	defer func() {
		c.reset()
		p.mu.Lock()
		delete(p.open, c)
		p.mu.Unlock()
	}()
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		return
	}
	if !c.attach(up) || p.refuse.Load() {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pumpUp(c)
		c.reset()
	}()
	p.pumpDown(c)
	c.reset()
	<-done
}

// pumpUp copies the client's requests to the upstream, after the latency in force.
func (p *Proxy) pumpUp(c *pair) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			if d := time.Duration(p.latency.Load()); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-c.cut:
					t.Stop()
					return
				}
			}
			c.asked.Store(true)
			if _, werr := c.upstream.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pumpDown copies the upstream's answers to the client, losing every nth one.
func (p *Proxy) pumpDown(c *pair) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.upstream.Read(buf)
		if n > 0 {
			if c.asked.CompareAndSwap(true, false) {
				k := p.answers.Add(1)
				if every := p.dropEvery.Load(); every > 0 && k%every == 0 {
					p.dropped.Add(1)
					return
				}
			}
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
