package storage

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// ErrInvalidDigest reports a digest that is malformed or of an algorithm other than sha256 and sha512.
// Writes return it; reads and deletes of such a digest return an error wrapping ErrNotFound instead,
// since no such blob can exist.
var ErrInvalidDigest = errors.New("invalid or unsupported digest")

// FS is a Store on a local filesystem. Its layout under root:
//
//	blobs/<alg>/<first two hex>/<hex>   content-addressed blobs (sha256 and sha512)
//	uploads/<id>/data                   resumable upload sessions
//	tmp/                                in-progress writes, removed by NewFS
//
// All three live on one filesystem so that renames and links are atomic. One process owns a root at a
// time: NewFS removes whatever tmp/ holds, and upload sessions are serialised by in-process locks.
type FS struct {
	root    string
	blobs   string
	uploads string
	tmp     string
	locks   keyedMutex
}

var _ Store = (*FS)(nil)

// NewFS opens (creating if needed) a store at root, normally <data-dir>/storage. It removes files left
// in tmp/ by a previous process.
func NewFS(root string) (*FS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage: root %q: %w", root, err)
	}
	s := &FS{
		root:    abs,
		blobs:   filepath.Join(abs, "blobs"),
		uploads: filepath.Join(abs, "uploads"),
		tmp:     filepath.Join(abs, "tmp"),
	}
	for _, dir := range []string{s.blobs, s.uploads, s.tmp} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("storage: read tmp: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return nil, fmt.Errorf("storage: remove stale temp file: %w", err)
		}
	}
	return s, nil
}

// Root returns the absolute root directory.
func (s *FS) Root() string { return s.root }

// validDigest reports whether d is "sha256:" and 64 lower-case hex digits or "sha512:" and 128, which
// also makes its hex part safe to use as a file name. (digest.Digest's methods panic on some malformed
// values, so this checks the bytes itself.)
func validDigest(d digest.Digest) bool {
	s := string(d)
	var hex string
	switch {
	case len(s) == 7+64 && s[:7] == "sha256:":
		hex = s[7:]
	case len(s) == 7+128 && s[:7] == "sha512:":
		hex = s[7:]
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newHash returns a fresh hash for a validated digest's algorithm.
func newHash(alg digest.Algorithm) hash.Hash {
	if alg == digest.SHA512 {
		return sha512.New()
	}
	return sha256.New()
}

// blobPath returns where a validated digest's content lives.
func (s *FS) blobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(s.blobs, string(d.Algorithm()), hex[:2], hex)
}

// Stat returns the size of the blob, or an error wrapping ErrNotFound.
func (s *FS) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !validDigest(d) {
		return 0, fmt.Errorf("storage: stat %.80q: %w", d, ErrNotFound)
	}
	fi, err := os.Stat(s.blobPath(d))
	if err != nil {
		return 0, notFound("stat", d, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("storage: stat %s: %w", d, ErrNotFound)
	}
	return fi.Size(), nil
}

// Open returns the blob for reading, or an error wrapping ErrNotFound. The Blob is backed by an
// *os.File: it seeks, reads at offsets, and copies to sockets without buffering the content.
func (s *FS) Open(ctx context.Context, d digest.Digest) (Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validDigest(d) {
		return nil, fmt.Errorf("storage: open %.80q: %w", d, ErrNotFound)
	}
	f, err := os.Open(s.blobPath(d))
	if err != nil {
		return nil, notFound("open", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("storage: open %s: %w", d, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("storage: open %s: %w", d, ErrNotFound)
	}
	return &fileBlob{f: f, size: fi.Size()}, nil
}

// Delete removes the blob, or returns an error wrapping ErrNotFound. Readers that already opened it
// keep reading the old content.
func (s *FS) Delete(ctx context.Context, d digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validDigest(d) {
		return fmt.Errorf("storage: delete %.80q: %w", d, ErrNotFound)
	}
	if err := os.Remove(s.blobPath(d)); err != nil {
		return notFound("delete", d, err)
	}
	return nil
}

// Put stores r's content under d after verifying that it hashes to d. It streams r through a temporary
// file (bounded memory), fsyncs it and links it into place only after the digest matched; on any error,
// including a panic while reading r, the temporary file is removed. If d is already stored, r is not
// read at all and the existing size is returned. Concurrent Puts of one digest are safe: the first to
// finish stores the content and the others discard theirs.
func (s *FS) Put(ctx context.Context, d digest.Digest, r io.Reader) (int64, error) {
	if !validDigest(d) {
		return 0, fmt.Errorf("storage: put %.80q: %w", d, ErrInvalidDigest)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if size, err := s.Stat(ctx, d); err == nil {
		return size, nil
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return 0, fmt.Errorf("storage: put %s: %w", d, err)
	}
	done := false
	defer func() {
		// Runs on every error return and while a panic from r unwinds.
		if !done {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	h := newHash(d.Algorithm())
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx: ctx, r: r})
	if err != nil {
		return 0, fmt.Errorf("storage: put %s: %w", d, err)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return 0, fmt.Errorf("storage: put %s: content is %s: %w", d, got, ErrDigestMismatch)
	}
	size, err := s.install(f, d, n)
	if err != nil {
		return 0, fmt.Errorf("storage: put %s: %w", d, err)
	}
	done = true
	return size, nil
}

// install makes the verified temporary file f (size bytes) the content of d: it fsyncs and closes f,
// links it into place without replacing existing content, and removes the temporary name. It returns
// the size of the stored blob. f is closed and its name removed whatever happens.
func (s *FS) install(f *os.File, d digest.Digest, size int64) (int64, error) {
	tmpName := f.Name()
	defer func() { _ = os.Remove(tmpName) }()
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return s.link(tmpName, d, size)
}

// link gives the verified, synced file at src the name of d's blob without replacing an existing blob,
// and returns the stored size. The caller removes src.
func (s *FS) link(src string, d digest.Digest, size int64) (int64, error) {
	dst := s.blobPath(d)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	err := os.Link(src, dst)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		// Another writer stored it first; its content is identical because both were verified.
		fi, serr := os.Stat(dst)
		if serr != nil {
			return 0, serr
		}
		return fi.Size(), nil
	default:
		// Filesystems without hard links: rename replaces atomically, and any existing content is the
		// same bytes.
		if rerr := os.Rename(src, dst); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
	}
	if err := syncDir(dir); err != nil {
		return 0, err
	}
	return size, nil
}

func notFound(op string, d digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: %s %s: %w", op, d, ErrNotFound)
	}
	return fmt.Errorf("storage: %s %s: %w", op, d, err)
}

// syncDir fsyncs a directory so that a rename or link in it survives a crash.
func syncDir(dir string) error {
	df, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := df.Sync()
	cerr := df.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// fileBlob is a Blob backed by an open file. It forwards ReadAt and WriteTo so that io.Copy to a
// socket can use sendfile/splice.
type fileBlob struct {
	f    *os.File
	size int64
}

var (
	_ Blob        = (*fileBlob)(nil)
	_ io.ReaderAt = (*fileBlob)(nil)
	_ io.WriterTo = (*fileBlob)(nil)
)

func (b *fileBlob) Read(p []byte) (int, error)                { return b.f.Read(p) }
func (b *fileBlob) ReadAt(p []byte, off int64) (int, error)   { return b.f.ReadAt(p, off) }
func (b *fileBlob) Seek(off int64, whence int) (int64, error) { return b.f.Seek(off, whence) }
func (b *fileBlob) WriteTo(w io.Writer) (int64, error)        { return b.f.WriteTo(w) }
func (b *fileBlob) Close() error                              { return b.f.Close() }

// Size returns the blob's size when it was opened.
func (b *fileBlob) Size() int64 { return b.size }
