package proxy

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// fill is one upstream blob download into a temporary file, shared by every client that asks for the
// blob while it runs. Readers follow the growing file; the last byte is held back until the digest is
// verified, so no client ever receives a complete blob that failed verification.
type fill struct {
	sizeKnown chan struct{} // closed once the upstream answered (size set) or the fill failed
	done      chan struct{} // closed once the blob is committed or the fill failed

	mu        sync.Mutex
	size      int64 // upstream Content-Length, -1 when unknown
	path      string
	written   int64
	progress  chan struct{} // closed and replaced whenever written grows
	finishing bool          // the temp file is about to be renamed: new readers wait for done
	finished  bool          // finish ran: written and err are final (mirrors done, read under mu)
	err       error
}

func newFill() *fill {
	return &fill{sizeKnown: make(chan struct{}), done: make(chan struct{}), progress: make(chan struct{}), size: -1}
}

// started records the temp file and the size once the upstream answered.
func (f *fill) started(path string, size int64) {
	f.mu.Lock()
	f.path, f.size = path, size
	f.mu.Unlock()
	close(f.sizeKnown)
}

// advance records n more bytes written and wakes readers.
func (f *fill) advance(n int) {
	f.mu.Lock()
	f.written += int64(n)
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
}

// beginCommit stops new readers from opening the temp file.
func (f *fill) beginCommit() {
	f.mu.Lock()
	f.finishing = true
	f.mu.Unlock()
}

// finish ends the fill with err (nil on success) and wakes everyone.
func (f *fill) finish(err error) {
	f.mu.Lock()
	f.err = err
	f.finished = true
	select {
	case <-f.sizeKnown:
	default:
		close(f.sizeKnown)
	}
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
	close(f.done)
}

// openTemp opens the temp file for a new reader, or reports that the fill is past that point (committing,
// committed, failed, or never started a file): the caller then waits for done and reads the outcome.
func (f *fill) openTemp() (file *os.File, past bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.finishing || f.finished || f.path == "" {
		return nil, true
	}
	file, err := os.Open(f.path)
	if err != nil {
		// The fill failed and removed its temp file before finish ran: its error comes with done.
		return nil, true
	}
	return file, false
}

// fillReader streams a blob from a fill's temporary file as it grows.
type fillReader struct {
	ctx  context.Context // the reader's own request; cancelling it stops this reader only
	f    *fill
	file *os.File
	off  int64
}

func (r *fillReader) Size() int64 {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.f.size
}

func (r *fillReader) Read(p []byte) (int, error) {
	for {
		// One snapshot under the lock: reading done separately could pair a final "done" with a stale
		// written (an early EOF) or a stale nil err (handing out the held-back byte of a bad blob).
		r.f.mu.Lock()
		written, progress, err, done := r.f.written, r.f.progress, r.f.err, r.f.finished
		r.f.mu.Unlock()
		if done && err != nil {
			return 0, err
		}
		avail := written - r.off
		if !done {
			avail-- // hold the last byte back until the digest is verified
		}
		if avail > 0 {
			if int64(len(p)) > avail {
				p = p[:avail]
			}
			n, rerr := r.file.Read(p)
			r.off += int64(n)
			if n > 0 || rerr == nil {
				return n, nil
			}
			if !errors.Is(rerr, io.EOF) {
				return 0, rerr
			}
		} else if done {
			return 0, io.EOF
		}
		select {
		case <-progress:
		case <-r.f.done:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *fillReader) Close() error { return r.file.Close() }

// fillGroup tracks the fills in progress by key.
type fillGroup struct {
	mu    sync.Mutex
	fills map[string]*fill
}

func newFillGroup() *fillGroup { return &fillGroup{fills: map[string]*fill{}} }

// join returns the fill for key, creating it when none runs; leader is true for the creator, which must
// run it and call remove when it ends.
func (g *fillGroup) join(key string) (f *fill, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.fills[key]; ok {
		return f, false
	}
	f = newFill()
	g.fills[key] = f
	return f, true
}

func (g *fillGroup) remove(key string, f *fill) {
	g.mu.Lock()
	if g.fills[key] == f {
		delete(g.fills, key)
	}
	g.mu.Unlock()
}
