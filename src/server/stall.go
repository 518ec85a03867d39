package server

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// stallChunk is the most bytes written under one write deadline. A transfer is cut when the client takes
// more than the stall timeout for one chunk, i.e. when it receives less than stallChunk bytes in that
// time: 256 KiB a minute by default, about 4 KiB/s.
const stallChunk = 256 << 10

// stallGuard cuts clients that stop moving bytes, without bounding how long a steady transfer may take
// (a fixed http.Server ReadTimeout or WriteTimeout would cut a large blob on a slow link):
//
//   - a request body that delivers no byte for the timeout fails its Read (the handler sees a timeout
//     error; the connection is closed);
//   - a response write, and every stallChunk bytes of a streamed body (including sendfile), must go out
//     within the timeout, so a client that stops reading a blob is cut.
//
// The deadlines are moved forward with every Read and every chunk through http.ResponseController. The
// write deadline is set once more when the handler returns, covering net/http's final flush (net/http
// clears it after each request). The read deadline is set at the start of a request with a body (net/http discards an unread body before it answers, reading without a
// deadline otherwise) and cleared when the body ends, so that net/http's background read of a finished
// body does not time out and cancel the request while the handler still works.
type stallGuard struct {
	timeout time.Duration
	now     func() time.Time
}

// wrap returns w guarded and guards r's body. Call the writer's extend when the handler returned.
func (g *stallGuard) wrap(w http.ResponseWriter, r *http.Request) *stallWriter {
	sw := &stallWriter{ResponseWriter: w, rc: *http.NewResponseController(w), g: g}
	if r.Body != nil && r.Body != http.NoBody {
		// Also for a body the handler never reads: net/http then discards it before it answers.
		_ = sw.rc.SetReadDeadline(g.now().Add(g.timeout))
		r.Body = &stallBody{ReadCloser: r.Body, w: sw}
	}
	return sw
}

// stallBody moves the read deadline forward before every Read and clears it when the body ends. After
// any other error it leaves the deadline, passed by then, in place, so that net/http's discarding of the
// rest of the body fails at once and the connection is closed. Its first Read also moves the write
// deadline: net/http may write "100 Continue" then, outside stallWriter.
type stallBody struct {
	io.ReadCloser
	w       *stallWriter // its controller and guard serve the body too
	started bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.w.extend()
	}
	_ = b.w.rc.SetReadDeadline(b.w.g.now().Add(b.w.g.timeout))
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		_ = b.w.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// stallWriter moves the write deadline forward before every write of at most stallChunk bytes.
type stallWriter struct {
	http.ResponseWriter
	rc http.ResponseController // by value: one allocation less per request
	g  *stallGuard
}

func (w *stallWriter) extend() { _ = w.rc.SetWriteDeadline(w.g.now().Add(w.g.timeout)) }

func (w *stallWriter) Write(p []byte) (int, error) {
	var total int
	for len(p) > 0 {
		chunk := p[:min(len(p), stallChunk)]
		w.extend()
		n, err := w.ResponseWriter.Write(chunk)
		total += n
		if err != nil {
			return total, err
		}
		p = p[n:]
	}
	return total, nil
}

// ReadFrom copies r in chunks of stallChunk bytes, each under a fresh deadline. Each chunk is an
// io.LimitedReader over r itself (over the reader inside r when r is one already), which keeps net/http's
// sendfile path for files.
func (w *stallWriter) ReadFrom(r io.Reader) (int64, error) {
	src, remain := r, int64(-1) // -1: until EOF
	lr, limited := r.(*io.LimitedReader)
	if limited {
		src, remain = lr.R, max(lr.N, 0)
	}
	var total int64
	var err error
	for remain != 0 {
		n := int64(stallChunk)
		if remain >= 0 {
			n = min(n, remain)
		}
		w.extend()
		var got int64
		got, err = copyTo(w.ResponseWriter, &io.LimitedReader{R: src, N: n})
		total += got
		if remain >= 0 {
			remain -= got
		}
		if err != nil || got < n {
			break
		}
	}
	if limited {
		lr.N = remain
	}
	return total, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ io.ReaderFrom = (*stallWriter)(nil)
	_ io.ReadCloser = (*stallBody)(nil)
)
