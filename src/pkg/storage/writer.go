package storage

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// errWriterClosed reports use of a Writer after Commit, Cancel or a failed Verify, or a write after Verify.
var errWriterClosed = errors.New("storage: writer already verified, committed or cancelled")

// NewWriter starts a write to a temporary file whose digest is checked at Verify or Commit. The content
// is hashed with sha256 while it is written; a sha512 digest re-reads the temporary file once (bounded
// memory), since sha256 is by far the common case and hashing both would double the CPU cost of every write.
func (s *FS) NewWriter(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newSpoolWriter(s.tmp, func(_ context.Context, f *os.File, d digest.Digest, size int64) (int64, error) {
		return s.install(f, d, size)
	})
}

// installFunc makes the verified temporary file f (size bytes) the content of d and returns the stored
// size. It closes f and removes its name whatever happens.
type installFunc func(ctx context.Context, f *os.File, d digest.Digest, size int64) (int64, error)

// newSpoolWriter starts a write to a new temporary file in dir, which install stores at Commit.
func newSpoolWriter(dir string, install installFunc) (*fsWriter, error) {
	f, err := os.CreateTemp(dir, "write-*")
	if err != nil {
		return nil, fmt.Errorf("storage: new writer: %w", err)
	}
	return &fsWriter{install: install, path: f.Name(), f: f, sha256: newHash(digest.SHA256)}, nil
}

// fsWriter is a Writer on a temporary file on the local filesystem (for every backend: readers follow
// it through Path). Write, WriteFrom, Verify, Commit and Cancel are serialised by mu; Size and Path may
// be called from any goroutine at any time.
type fsWriter struct {
	install installFunc
	path    string // immutable
	size    atomic.Int64

	mu       sync.Mutex
	f        *os.File // nil once committed, cancelled or failed
	sha256   hash.Hash
	err      error         // first write error; Verify and Commit fail with it
	verified digest.Digest // set by a successful Verify: writing has ended
}

var _ Writer = (*fsWriter)(nil)

// writable reports why nothing more may be written: the writer is closed or verified, or an earlier
// write failed. Called with mu held.
func (w *fsWriter) writable() error {
	if w.f == nil || w.verified != "" {
		return errWriterClosed
	}
	return w.err
}

// Write appends p to the temporary file.
func (w *fsWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	w.sha256.Write(p[:n])
	w.size.Add(int64(n))
	if err != nil {
		w.err = err
	}
	return n, err
}

// WriteFrom appends r's content until io.EOF, hashing on another goroutine (see Writer).
func (w *fsWriter) WriteFrom(ctx context.Context, r io.Reader, onWrite func(n int)) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return 0, err
	}
	h := startHasher(w.sha256)
	defer h.stop() // the hash is complete when WriteFrom returns
	var total int64
	buf := h.buffer()
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := w.f.Write(buf[:n])
			w.size.Add(int64(m))
			total += int64(m)
			h.hash(buf[:m])
			buf = h.buffer()
			if werr != nil {
				w.err = werr
				return total, fmt.Errorf("storage: write: %w", werr)
			}
			if onWrite != nil {
				onWrite(m)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// Size returns the bytes written so far.
func (w *fsWriter) Size() int64 { return w.size.Load() }

// Path returns the temporary file's path. It no longer exists after Commit, Cancel or a failed Verify,
// but readers that opened it keep their content.
func (w *fsWriter) Path() string { return w.path }

// Verify checks that the content hashes to d (sha256 or sha512) and ends writing; on any failure it
// removes the temporary file and finishes the writer. On a mismatch the error wraps ErrDigestMismatch,
// on an unsupported digest ErrInvalidDigest.
func (w *fsWriter) Verify(ctx context.Context, d digest.Digest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errWriterClosed
	}
	if w.verified == d {
		return nil
	}
	if err := w.check(ctx, d); err != nil {
		w.discard()
		return err
	}
	w.verified = d
	return nil
}

// Commit verifies that the content hashes to d (unless Verify did), fsyncs it and links it into
// place. The temporary file is removed whatever the outcome; on a mismatch the error wraps
// ErrDigestMismatch, on an unsupported digest ErrInvalidDigest. If d is already stored the existing
// content is kept.
func (w *fsWriter) Commit(ctx context.Context, d digest.Digest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errWriterClosed
	}
	if w.verified != d {
		if err := w.check(ctx, d); err != nil {
			w.discard()
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		w.discard()
		return err
	}
	f := w.f
	w.f = nil
	if _, err := w.install(ctx, f, d, w.size.Load()); err != nil {
		return fmt.Errorf("storage: commit %s: %w", d, err)
	}
	return nil
}

// check reports whether the content written hashes to d. mu is held.
func (w *fsWriter) check(ctx context.Context, d digest.Digest) error {
	if !validDigest(d) {
		return fmt.Errorf("storage: commit %.80q: %w", d, ErrInvalidDigest)
	}
	if w.err != nil {
		return fmt.Errorf("storage: commit %s: earlier write failed: %w", d, w.err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var got digest.Digest
	if d.Algorithm() == digest.SHA256 {
		got = digest.NewDigest(digest.SHA256, w.sha256)
	} else {
		h := newHash(d.Algorithm())
		if _, err := io.Copy(h, ctxReader{ctx: ctx, r: io.NewSectionReader(w.f, 0, w.size.Load())}); err != nil {
			return fmt.Errorf("storage: commit %s: rehash: %w", d, err)
		}
		got = digest.NewDigest(d.Algorithm(), h)
	}
	if got != d {
		return fmt.Errorf("storage: commit %s: content is %s: %w", d, got, ErrDigestMismatch)
	}
	return nil
}

// discard closes and removes the temporary file and finishes the writer. mu is held.
func (w *fsWriter) discard() {
	_ = w.f.Close()
	_ = os.Remove(w.path)
	w.f = nil
}

// Cancel removes the temporary file. It is a no-op after Commit, Cancel or a failed Verify.
func (w *fsWriter) Cancel() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.f
	if f == nil {
		return nil
	}
	w.f = nil
	cerr := f.Close()
	if err := os.Remove(w.path); err != nil {
		return fmt.Errorf("storage: cancel: %w", err)
	}
	return cerr
}
