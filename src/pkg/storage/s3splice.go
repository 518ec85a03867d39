package storage

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// s3HTTPClient is what the SDK sends its requests through (s3.HTTPClient).
type s3HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// spliceKey marks the context of a request whose response body may be spliced (an object GET).
type spliceKey struct{}

// withSplice marks ctx: the object GET sent under it may go through a spliceClient connection.
func withSplice(ctx context.Context) context.Context {
	return context.WithValue(ctx, spliceKey{}, true)
}

const (
	// maxIdleSpliceConns bounds the idle connections a spliceClient keeps for reuse.
	maxIdleSpliceConns = 64
	// spliceIdleTimeout is how long an idle connection is kept (servers close theirs after a while).
	spliceIdleTimeout = 30 * time.Second
)

// spliceClient sends object GETs over plain-HTTP endpoints on connections of its own, so that the body
// of the response can be copied to a client's connection by splice(2) (net/http's ReadFrom of a
// *net.TCPConn): the bytes go from socket to socket inside the kernel, without a read and a write of
// every chunk through Berth's memory. That copy was about 95% of Berth's CPU on a warm blob GET from S3
// (profiled: read and write system calls), against the S3 server's sendfile. Every other request, and
// every request over TLS or through a proxy, goes to next (the SDK's client). The request itself is the
// SDK's, signed and retried by it; only the transport differs. Idle connections whose body was read to
// its end are kept (at most maxIdleSpliceConns, for up to spliceIdleTimeout); a kept connection that
// turns out closed by the server is replaced once by a new one.
type spliceClient struct {
	next   s3HTTPClient
	dialer net.Dialer

	mu   sync.Mutex
	idle []*spliceConn
}

// spliceConn is one connection to the S3 server and its read buffer (which may hold response headers
// and the first bytes of a body).
type spliceConn struct {
	tcp   *net.TCPConn
	br    *bufio.Reader
	addr  string
	since time.Time // when it became idle
}

func newSpliceClient(next s3HTTPClient) *spliceClient {
	return &spliceClient{next: next, dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
}

// Do sends req: a marked plain-HTTP GET without a proxy on a connection of the client's own, anything
// else through next.
func (c *spliceClient) Do(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Scheme != "http" || req.Context().Value(spliceKey{}) == nil {
		return c.next.Do(req)
	}
	if p, err := http.ProxyFromEnvironment(req); err != nil || p != nil {
		return c.next.Do(req)
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	if sc := c.take(addr); sc != nil {
		resp, err := c.roundTrip(req, sc)
		if err == nil || req.Context().Err() != nil {
			return resp, err
		}
		// The server closed the kept connection meanwhile: a GET is safe to send again.
	}
	sc, err := c.dial(req.Context(), addr)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(req, sc)
}

func (c *spliceClient) dial(ctx context.Context, addr string) (*spliceConn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("storage: s3: not a TCP connection")
	}
	return &spliceConn{tcp: tcp, br: bufio.NewReader(tcp), addr: addr}, nil
}

// roundTrip writes req on sc and reads the response's header. A body of known length becomes a
// spliceBody; any other body is read through sc's buffer and the connection closed with it.
func (c *spliceClient) roundTrip(req *http.Request, sc *spliceConn) (*http.Response, error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { _ = sc.tcp.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = sc.tcp.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := req.Write(sc.tcp); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(sc.br, req)
	if err != nil {
		return fail(err)
	}
	body := &spliceBody{c: c, sc: sc, n: resp.ContentLength, stop: stop, keep: !resp.Close}
	if resp.ContentLength < 0 || len(resp.TransferEncoding) > 0 {
		body.other, body.keep = resp.Body, false
	}
	resp.Body = body
	return resp, nil
}

// take returns an idle connection to addr, or nil. It closes the connections idle for longer than
// spliceIdleTimeout.
func (c *spliceClient) take(addr string) *spliceConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	cutoff := time.Now().Add(-spliceIdleTimeout)
	kept := c.idle[:0]
	for _, sc := range c.idle {
		if sc.since.Before(cutoff) {
			_ = sc.tcp.Close()
		} else {
			kept = append(kept, sc)
		}
	}
	clear(c.idle[len(kept):])
	c.idle = kept
	for i := len(c.idle) - 1; i >= 0; i-- {
		if sc := c.idle[i]; sc.addr == addr {
			c.idle = append(c.idle[:i], c.idle[i+1:]...)
			return sc
		}
	}
	return nil
}

// put keeps sc for reuse, or closes it when enough are kept.
func (c *spliceClient) put(sc *spliceConn) {
	sc.since = time.Now()
	c.mu.Lock()
	if len(c.idle) < maxIdleSpliceConns {
		c.idle = append(c.idle, sc)
		sc = nil
	}
	c.mu.Unlock()
	if sc != nil {
		_ = sc.tcp.Close()
	}
}

// spliceBody is a response body of n bytes on a spliceClient connection. Its WriteTo hands the bytes
// still in the socket to w's ReadFrom as an io.LimitedReader over the *net.TCPConn: when w leads to
// net/http's response writer, the copy is a splice. Close keeps the connection when the body was read
// to its end, else closes it.
type spliceBody struct {
	c     *spliceClient
	sc    *spliceConn
	n     int64         // bytes of the body not yet read
	other io.ReadCloser // the body when its length is unknown (read through it instead)
	stop  func() bool   // stops closing the connection when the request's context ends
	keep  bool          // the connection may serve another request once the body is read
}

func (b *spliceBody) Read(p []byte) (int, error) {
	if b.other != nil {
		return b.other.Read(p)
	}
	if b.n <= 0 {
		return 0, io.EOF
	}
	m, err := b.sc.br.Read(p[:min(int64(len(p)), b.n)])
	b.n -= int64(m)
	if errors.Is(err, io.EOF) && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return m, err
}

// WriteTo writes the rest of the body to w: what the connection's buffer holds, then the socket's bytes
// through w's ReadFrom (a splice for net/http's response writer).
func (b *spliceBody) WriteTo(w io.Writer) (int64, error) {
	if b.other != nil {
		return io.Copy(w, b.other)
	}
	var total int64
	if k := min(int64(b.sc.br.Buffered()), b.n); k > 0 {
		buf, _ := b.sc.br.Peek(int(k))
		m, err := w.Write(buf)
		_, _ = b.sc.br.Discard(m)
		b.n -= int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
	lr := &io.LimitedReader{R: b.sc.tcp, N: b.n}
	var m int64
	var err error
	if rf, ok := w.(io.ReaderFrom); ok {
		m, err = rf.ReadFrom(lr)
	} else {
		m, err = io.CopyBuffer(w, lr, make([]byte, copyChunk))
	}
	b.n = lr.N
	total += m
	if err == nil && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return total, err
}

func (b *spliceBody) Close() error {
	if b.sc == nil {
		return nil
	}
	sc := b.sc
	b.sc = nil
	alive := b.stop() // false: the context ended and closed the connection
	if b.other != nil {
		_ = b.other.Close()
	}
	switch {
	case !alive:
		return nil // closed already
	case b.keep && b.other == nil && b.n == 0 && sc.br.Buffered() == 0:
		b.c.put(sc)
		return nil
	}
	return sc.tcp.Close()
}

var (
	_ s3HTTPClient = (*spliceClient)(nil)
	_ io.WriterTo  = (*spliceBody)(nil)
)
