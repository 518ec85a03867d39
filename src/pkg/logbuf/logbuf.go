// Package logbuf buffers log output so that a request never waits on the log's write(2): lines are
// appended to memory under a short lock and written out by a background goroutine every interval,
// as soon as a batch fills, and at Close. It is what nginx's access_log buffer= does for Berth's
// one-line-per-request logs: under load the per-line write, made while the log handler holds its lock,
// otherwise serialises every request behind the log file.
//
// Trade-off: a crash that does not run Close (SIGKILL, a runtime fatal error) loses at most the last
// interval of lines. An interval <= 0 disables buffering (Wrap returns the writer itself).
package logbuf

import (
	"io"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// Bounds of the buffer: a batch at which the flusher is woken early, and a size at which writers stop
// buffering and write through themselves (the output is slower than the logging: back-pressure, never
// unbounded memory and never dropped lines).
const (
	batchSize = 64 << 10
	maxBuffer = 4 << 20
	// keepBuffer is the largest buffer kept for reuse after a flush; a burst's larger one is dropped.
	keepBuffer = 256 << 10
)

// Writer is a buffered, periodically flushed io.Writer. Safe for concurrent use; each Write is kept
// whole and in order.
type Writer struct {
	out io.Writer

	mu     sync.Mutex
	buf    []byte
	spare  []byte // the buffer written out last, kept for reuse (outMu and mu held to swap)
	closed bool
	err    error // first error from out; later writes report it

	outMu sync.Mutex // serialises writes to out, keeping order between the flusher and write-through

	loop *syncutil.Loop // the flusher
}

// WriteCloser is what Wrap returns: Close flushes what is buffered and stops the flusher.
type WriteCloser interface {
	io.Writer
	Close() error
}

// Wrap returns out buffered with the given flush interval, or out itself (with a no-op Close) when
// interval <= 0.
func Wrap(out io.Writer, interval time.Duration) WriteCloser {
	if interval <= 0 {
		return nopCloser{out}
	}
	w := &Writer{out: out}
	w.loop = syncutil.StartLoop(interval, func() { _ = w.flush() })
	return w
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Write buffers p. After Close, and when the buffer is at its bound, p is written through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	if w.closed || len(w.buf)+len(p) > maxBuffer {
		// Flush what is buffered first so that lines stay in order, then write p.
		w.mu.Unlock()
		if err := w.flush(); err != nil {
			return 0, err
		}
		w.outMu.Lock()
		defer w.outMu.Unlock()
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= batchSize
	w.mu.Unlock()
	if full {
		w.loop.Wake()
	}
	return len(p), nil
}

// flush writes out what is buffered.
func (w *Writer) flush() error {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	w.mu.Lock()
	b := w.buf
	if len(b) == 0 {
		w.mu.Unlock()
		return nil
	}
	w.buf, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	_, err := w.out.Write(b)
	if cap(b) <= keepBuffer { // reused by the flush after next: no allocation per flush in steady state
		w.mu.Lock()
		w.spare = b[:0]
		w.mu.Unlock()
	}
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
		return err
	}
	return nil
}

// Close flushes what is buffered and stops the flusher; later writes go straight to the output.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.loop.Stop()
	return w.flush()
}
