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

// errWriterClosed reports use of a Writer after Commit or Cancel.
var errWriterClosed = errors.New("storage: writer already committed or cancelled")

// NewWriter starts a write to a temporary file whose digest is checked at Commit. The content is hashed
// with sha256 while it is written; a sha512 Commit re-reads the temporary file once (bounded memory),
// since sha256 is by far the common case and hashing both would double the CPU cost of every write.
func (s *FS) NewWriter(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.tmp, "write-*")
	if err != nil {
		return nil, fmt.Errorf("storage: new writer: %w", err)
	}
	return &fsWriter{s: s, path: f.Name(), f: f, sha256: newHash(digest.SHA256)}, nil
}

// fsWriter is a Writer on a temporary file. Write, Commit and Cancel are serialised by mu; Size and Path
// may be called from any goroutine at any time.
type fsWriter struct {
	s    *FS
	path string // immutable
	size atomic.Int64

	mu     sync.Mutex
	f      *os.File // nil once committed or cancelled
	sha256 hash.Hash
	err    error // first write error; Commit fails with it
}

var _ Writer = (*fsWriter)(nil)

// Write appends p to the temporary file.
func (w *fsWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, errWriterClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.sha256.Write(p[:n])
	w.size.Add(int64(n))
	if err != nil {
		w.err = err
	}
	return n, err
}

// Size returns the bytes written so far.
func (w *fsWriter) Size() int64 { return w.size.Load() }

// Path returns the temporary file's path. It no longer exists after Commit or Cancel, but readers that
// opened it keep their content.
func (w *fsWriter) Path() string { return w.path }

// Commit verifies that the content hashes to d (sha256 or sha512) and links it into place. The
// temporary file is removed whatever the outcome; on a mismatch the error wraps ErrDigestMismatch, on
// an unsupported digest ErrInvalidDigest. If d is already stored the existing content is kept.
func (w *fsWriter) Commit(ctx context.Context, d digest.Digest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.f
	if f == nil {
		return errWriterClosed
	}
	w.f = nil
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
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
		if _, err := io.Copy(h, ctxReader{ctx: ctx, r: io.NewSectionReader(f, 0, w.size.Load())}); err != nil {
			return fmt.Errorf("storage: commit %s: rehash: %w", d, err)
		}
		got = digest.NewDigest(d.Algorithm(), h)
	}
	if got != d {
		return fmt.Errorf("storage: commit %s: content is %s: %w", d, got, ErrDigestMismatch)
	}
	done = true
	if _, err := w.s.install(f, d, w.size.Load()); err != nil {
		return fmt.Errorf("storage: commit %s: %w", d, err)
	}
	return nil
}

// Cancel removes the temporary file. It is a no-op after Commit or Cancel.
func (w *fsWriter) Cancel() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.f
	if f == nil {
		return nil
	}
	w.f = nil
	cerr := f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("storage: cancel: %w", err)
	}
	return cerr
}
