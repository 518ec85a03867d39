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
// verified, so no client ever receives a complete blob that failed verification. Verification releases
// the readers; the blob is made durable and linked after that, and done is closed only then.
type fill struct {
	sizeKnown chan struct{} // closed once the upstream answered (size set) or the fill failed
	done      chan struct{} // closed once the blob is committed and linked, or the fill failed

	mu        sync.Mutex
	size      int64 // upstream Content-Length, -1 when unknown
	path      string
	written   int64
	progress  chan struct{} // closed and replaced whenever written grows or the fill is verified
	finishing bool          // the temp file is about to be verified and renamed: new readers wait for done
	verified  bool          // the content matched the digest: readers may have every byte, whatever follows
	finished  bool          // finish ran: written and err are final (mirrors done, read under mu)
	notStored bool          // served but not kept (over the project's quota): a later reader fills again
	slots     []*readerSlot // readers that joined before the temp file existed: started opens it for them
	err       error
}

// readerSlot holds the temp file handle opened for a reader that joined a fill before the file existed
// (the client whose request started it, most often). Opened by started, it serves that reader even when
// the fill outruns it: a blob that is not kept has its temp file removed as soon as it is verified, and
// a reader left to open the file by its path afterwards would find nothing and download the blob again.
type readerSlot struct {
	file     *os.File // nil until started opened it, and once openTemp took it
	released bool     // the reader is gone: started opens nothing for it
}

func newFill() *fill {
	return &fill{sizeKnown: make(chan struct{}), done: make(chan struct{}), progress: make(chan struct{}), size: -1}
}

// started records the temp file and the size once the upstream answered.
func (f *fill) started(path string, size int64) {
	f.mu.Lock()
	f.path, f.size = path, size
	for _, s := range f.slots {
		if !s.released {
			s.file, _ = os.Open(path) // nil on failure: that reader then waits for done
		}
	}
	f.slots = nil
	f.mu.Unlock()
	close(f.sizeKnown)
}

// advance records n more bytes written and wakes readers.
func (f *fill) advance(n int) {
	f.mu.Lock()
	f.written += int64(n)
	f.wake()
	f.mu.Unlock()
}

// wake wakes the readers waiting for progress. mu is held.
func (f *fill) wake() {
	close(f.progress)
	f.progress = make(chan struct{})
}

// beginCommit stops new readers from opening the temp file.
func (f *fill) beginCommit() {
	f.mu.Lock()
	f.finishing = true
	f.mu.Unlock()
}

// verify records that every byte written matches the digest and releases the held-back last byte to
// the readers. Call it only after all bytes are written and verified.
func (f *fill) verify() {
	f.mu.Lock()
	f.verified = true
	f.wake()
	f.mu.Unlock()
}

// skipStore records that the verified blob is served but not kept.
func (f *fill) skipStore() {
	f.mu.Lock()
	f.notStored = true
	f.mu.Unlock()
}

func (f *fill) wasNotStored() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notStored
}

func (f *fill) isVerified() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.verified
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
	f.wake()
	f.mu.Unlock()
	close(f.done)
}

// reserve asks started to open the temp file for the reader of s once it exists, when it does not yet;
// a reader joining later opens it by its path in openTemp. The reader calls release(s) when done with
// the fill.
func (f *fill) reserve(s *readerSlot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.path == "" && !f.finished {
		f.slots = append(f.slots, s)
	}
}

// release closes the handle kept in s if openTemp did not take it, and cancels the reservation.
func (f *fill) release(s *readerSlot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.released = true
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
}

// openTemp returns the handle reserved in s (may be nil) when started opened one, else opens the temp
// file for a new reader, or reports that the fill is past that point (committing, committed, failed, or
// never started a file): the caller then waits for done and reads the outcome.
func (f *fill) openTemp(s *readerSlot) (file *os.File, past bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s != nil && s.file != nil {
		file, s.file = s.file, nil
		return file, false
	}
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

// fillReader streams a blob from a fill's temporary file as it grows. It implements io.WriterTo, so
// that io.Copy to a response writer sends the file with sendfile.
type fillReader struct {
	ctx  context.Context // the reader's own request; cancelling it stops this reader only
	f    *fill
	file *os.File
	off  int64
}

var _ io.WriterTo = (*fillReader)(nil)

func (r *fillReader) Size() int64 {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.f.size
}

// next waits until the reader may read more, and returns how many bytes: every written byte but the
// last until the digest is verified, all of them afterwards. It returns io.EOF at the end, the fill's
// error when it failed before verification, or the reader's context error.
func (r *fillReader) next() (int64, error) {
	for {
		// One snapshot under the lock: reading the state separately could pair a final "verified" with
		// a stale written (an early EOF) or a stale nil err (handing out the held-back byte of a bad blob).
		r.f.mu.Lock()
		written, progress, err, finished, verified := r.f.written, r.f.progress, r.f.err, r.f.finished, r.f.verified
		r.f.mu.Unlock()
		// finished without error and unverified only happens for a fill without a temp file (the blob
		// was held already), which has no readers; it counts as complete all the same.
		complete := verified || (finished && err == nil)
		if finished && !complete {
			return 0, err
		}
		avail := written - r.off
		if !complete {
			avail-- // hold the last byte back until the digest is verified
		}
		if avail > 0 {
			return avail, nil
		}
		if complete {
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

// errShortTemp reports a temp file shorter than the bytes counted as written, which cannot happen
// since bytes are counted once written: it stops the reader rather than letting it spin.
var errShortTemp = errors.New("proxy: temporary blob file shorter than written")

func (r *fillReader) Read(p []byte) (int, error) {
	avail, err := r.next()
	if err != nil {
		return 0, err
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, err := r.file.Read(p)
	r.off += int64(n)
	switch {
	case n > 0:
		return n, nil
	case err == nil || errors.Is(err, io.EOF):
		return 0, errShortTemp
	default:
		return 0, err
	}
}

// WriteTo copies the blob to w as it grows. When w is an io.ReaderFrom (a net/http response), each
// available range is handed to it as an io.LimitedReader over the file, which net/http sends with
// sendfile, without copying through user space.
func (r *fillReader) WriteTo(w io.Writer) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	var total int64
	for {
		avail, err := r.next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := rf.ReadFrom(&io.LimitedReader{R: r.file, N: avail})
		r.off += n
		total += n
		if err != nil {
			return total, err
		}
		if n < avail {
			return total, errShortTemp
		}
	}
}

func (r *fillReader) Close() error { return r.file.Close() }

// fillGroup tracks the fills in progress by key.
type fillGroup struct {
	mu    sync.Mutex
	fills map[string]*fill
	idle  chan struct{} // closed while no fill runs; replaced when one starts
}

func newFillGroup() *fillGroup {
	idle := make(chan struct{})
	close(idle)
	return &fillGroup{fills: map[string]*fill{}, idle: idle}
}

// join returns the fill for key, creating it when none runs; leader is true for the creator, which must
// run it and call remove when it ends.
func (g *fillGroup) join(key string) (f *fill, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.fills[key]; ok {
		return f, false
	}
	if len(g.fills) == 0 {
		g.idle = make(chan struct{})
	}
	f = newFill()
	g.fills[key] = f
	return f, true
}

// running returns the fill in progress for key, or nil; it never starts one.
func (g *fillGroup) running(key string) *fill {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fills[key]
}

func (g *fillGroup) remove(key string, f *fill) {
	g.mu.Lock()
	if g.fills[key] == f {
		delete(g.fills, key)
		if len(g.fills) == 0 {
			close(g.idle)
		}
	}
	g.mu.Unlock()
}

// wait returns once no fill runs (each stored or failed), or with ctx's error.
func (g *fillGroup) wait(ctx context.Context) error {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	return waitFor(ctx, idle)
}
