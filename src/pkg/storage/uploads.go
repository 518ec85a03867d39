package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// Upload sessions keep no state besides their data file: the size is the file's size, and the digest
// is computed at CommitUpload by streaming the file once (bounded memory, O(size) reads). Appended
// chunks are fsynced at CommitUpload, not on every append, so a host crash (not a process crash) may
// lose acknowledged chunks; the client then sees an offset mismatch and restarts the upload.

// uploadIDLen is the length of an upload ID: 16 random bytes in lower-case hex.
const uploadIDLen = 32

// newUploadID returns a random URL-safe session ID.
func newUploadID() (string, error) {
	var b [uploadIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// validUploadID reports whether id has the form newUploadID makes, which keeps it a single, harmless
// path element.
func validUploadID(id string) bool {
	if len(id) != uploadIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *FS) uploadDir(id string) string  { return filepath.Join(s.uploads, id) }
func (s *FS) uploadData(id string) string { return filepath.Join(s.uploads, id, "data") }

func uploadNotFound(op, id string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: %s upload %.40q: %w", op, id, ErrNotFound)
	}
	return fmt.Errorf("storage: %s upload %s: %w", op, id, err)
}

// StartUpload creates an empty session and returns its ID: 32 lower-case hex characters from
// crypto/rand.
func (s *FS) StartUpload(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	for range 3 {
		id, err := newUploadID()
		if err != nil {
			return "", fmt.Errorf("storage: start upload: %w", err)
		}
		if err := os.Mkdir(s.uploadDir(id), 0o750); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return "", fmt.Errorf("storage: start upload: %w", err)
		}
		f, err := os.OpenFile(s.uploadData(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			_ = os.RemoveAll(s.uploadDir(id))
			return "", fmt.Errorf("storage: start upload: %w", err)
		}
		if err := f.Close(); err != nil {
			_ = os.RemoveAll(s.uploadDir(id))
			return "", fmt.Errorf("storage: start upload: %w", err)
		}
		return id, nil
	}
	return "", errors.New("storage: start upload: could not pick a free ID")
}

// UploadSize returns the bytes received so far, or an error wrapping ErrNotFound (also for a malformed
// ID).
func (s *FS) UploadSize(ctx context.Context, id string) (int64, error) {
	unlock, err := s.locks.lockSession(ctx, "size of", id)
	if err != nil {
		return 0, err
	}
	defer unlock()
	fi, err := os.Stat(s.uploadData(id))
	if err != nil {
		return 0, uploadNotFound("size of", id, err)
	}
	return fi.Size(), nil
}

// AppendUpload appends r to the session and returns the new size. offset, when >= 0, must equal the
// current size, else the error wraps ErrOffsetMismatch and the current size is returned with it. If reading r or writing fails (or r panics),
// the session is truncated back to its previous size. Appends to one session are serialised.
func (s *FS) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	unlock, err := s.locks.lockSession(ctx, "append to", id)
	if err != nil {
		return 0, err
	}
	defer unlock()
	f, err := os.OpenFile(s.uploadData(id), os.O_WRONLY, 0)
	if err != nil {
		return 0, uploadNotFound("append to", id, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("storage: append to upload %s: %w", id, err)
	}
	prev := fi.Size()
	if offset >= 0 && offset != prev {
		return prev, fmt.Errorf("storage: append to upload %s at %d, size is %d: %w", id, offset, prev, ErrOffsetMismatch)
	}
	if _, err := f.Seek(prev, io.SeekStart); err != nil {
		return 0, fmt.Errorf("storage: append to upload %s: %w", id, err)
	}
	ok := false
	defer func() {
		// Runs on every error return and while a panic from r unwinds.
		if !ok {
			_ = f.Truncate(prev)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx: ctx, r: r})
	if err != nil {
		return prev, fmt.Errorf("storage: append to upload %s: %w", id, err)
	}
	ok = true
	return prev + n, nil
}

// CommitUpload verifies the session's content against d and moves it into the blob store atomically.
// The session is removed on success and on ErrDigestMismatch; it is kept on ErrInvalidDigest, on a
// cancelled ctx and on I/O errors. If d is already stored the existing content is kept and the session
// removed. Returns the blob's size.
func (s *FS) CommitUpload(ctx context.Context, id string, d digest.Digest) (int64, error) {
	unlock, err := s.locks.lockCommit(ctx, id, d)
	if err != nil {
		return 0, err
	}
	defer unlock()
	data := s.uploadData(id)
	f, err := os.Open(data)
	if err != nil {
		return 0, uploadNotFound("commit", id, err)
	}
	defer func() { _ = f.Close() }()
	h := newHash(d.Algorithm())
	size, err := io.Copy(h, ctxReader{ctx: ctx, r: f})
	if err != nil {
		return 0, fmt.Errorf("storage: commit upload %s: %w", id, err)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		if rerr := os.RemoveAll(s.uploadDir(id)); rerr != nil {
			return 0, errors.Join(fmt.Errorf("storage: commit upload %s: content is %s: %w", id, got, ErrDigestMismatch), rerr)
		}
		return 0, fmt.Errorf("storage: commit upload %s: content is %s: %w", id, got, ErrDigestMismatch)
	}
	// The data was written through another descriptor; fsync flushes the file, whichever descriptor.
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("storage: commit upload %s: %w", id, err)
	}
	stored, err := s.link(data, d, size)
	if err != nil {
		return 0, fmt.Errorf("storage: commit upload %s: %w", id, err)
	}
	if err := os.RemoveAll(s.uploadDir(id)); err != nil {
		return 0, fmt.Errorf("storage: commit upload %s: remove session: %w", id, err)
	}
	return stored, nil
}

// CancelUpload removes the session, or returns an error wrapping ErrNotFound.
func (s *FS) CancelUpload(ctx context.Context, id string) error {
	unlock, err := s.locks.lockSession(ctx, "cancel", id)
	if err != nil {
		return err
	}
	defer unlock()
	dir := s.uploadDir(id)
	if _, err := os.Lstat(dir); err != nil {
		return uploadNotFound("cancel", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("storage: cancel upload %s: %w", id, err)
	}
	return nil
}

// PurgeUploads removes sessions whose data was last written before cutoff (abandoned uploads) and
// returns how many it removed. It is meant for a periodic janitor.
func (s *FS) PurgeUploads(ctx context.Context, cutoff time.Time) (int, error) {
	entries, err := os.ReadDir(s.uploads)
	if err != nil {
		return 0, fmt.Errorf("storage: purge uploads: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		id := e.Name()
		if !validUploadID(id) {
			continue
		}
		if s.purgeOne(id, cutoff) {
			removed++
		}
	}
	return removed, nil
}

// purgeOne removes the session id if its data is older than cutoff or missing (a start that crashed).
func (s *FS) purgeOne(id string, cutoff time.Time) bool {
	unlock := s.locks.lock(id)
	defer unlock()
	fi, err := os.Stat(s.uploadData(id))
	if err == nil && !fi.ModTime().Before(cutoff) {
		return false
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		// No data file: a start that crashed, or a session removed meanwhile. Judge by the directory.
		di, derr := os.Stat(s.uploadDir(id))
		if derr != nil || !di.ModTime().Before(cutoff) {
			return false
		}
	}
	return os.RemoveAll(s.uploadDir(id)) == nil
}

// keyedMutex serialises work per key; entries live only while someone holds or waits for them.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns the function that unlocks it.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// lockSession checks what every session operation checks first, ctx not done and a well-formed session
// ID (else an error wrapping ErrNotFound, naming op), and locks the session.
func (k *keyedMutex) lockSession(ctx context.Context, op, id string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validUploadID(id) {
		return nil, uploadNotFound(op, id, nil)
	}
	return k.lock(id), nil
}

// lockCommit is lockSession for CommitUpload, which also needs a supported digest (else
// ErrInvalidDigest, the session kept).
func (k *keyedMutex) lockCommit(ctx context.Context, id string, d digest.Digest) (unlock func(), err error) {
	if !validDigest(d) && ctx.Err() == nil && validUploadID(id) {
		return nil, fmt.Errorf("storage: commit upload %s as %.80q: %w", id, d, ErrInvalidDigest)
	}
	return k.lockSession(ctx, "commit", id)
}
