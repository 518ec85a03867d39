// Package storage keeps blob and manifest bytes content-addressed on a filesystem under the data dir.
// Writes go to a temporary file that is renamed into place only after its digest is verified; a crash
// never leaves a partial blob visible. Reads stream and seek (for Range) with bounded memory.
//
// The store knows nothing about repositories: package meta records which repository links which blob.
package storage

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"
)

var (
	// ErrNotFound reports a blob or upload session that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch reports content whose digest is not the expected one. Nothing was stored.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrOffsetMismatch reports an upload chunk that does not start where the session ends.
	ErrOffsetMismatch = errors.New("upload offset mismatch")
)

// Blob is an open blob. Close must be called.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
}

// BlobStatter tells whether a blob exists.
type BlobStatter interface {
	// Stat returns the size of the blob, or an error wrapping ErrNotFound.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
}

// BlobReader opens blobs.
type BlobReader interface {
	// Open returns the blob for reading, or an error wrapping ErrNotFound.
	Open(ctx context.Context, d digest.Digest) (Blob, error)
}

// BlobWriter writes blobs.
type BlobWriter interface {
	// Put stores r's content under d after verifying that it hashes to d (the algorithm of d is used).
	// On ErrDigestMismatch or any other error nothing is stored. Existing content is left as it is.
	Put(ctx context.Context, d digest.Digest, r io.Reader) (int64, error)
	// NewWriter starts a write whose digest is checked at Commit. It is used for streaming a blob to
	// a client and the store at once.
	NewWriter(ctx context.Context) (Writer, error)
}

// Writer is a blob being written. Exactly one of Commit or Cancel must be called, except after a failed
// Verify, which already removed the temporary file (Cancel is then a no-op).
type Writer interface {
	io.Writer
	// WriteFrom appends r's content until io.EOF and returns the bytes appended. Reading r and writing
	// the temporary file happen on the calling goroutine while the content is hashed on another one,
	// through a bounded ring of buffers, so that hashing does not slow the copy. onWrite, when not nil,
	// is called on the calling goroutine with the size of each chunk once it is in the file (readers
	// of Path see it). Errors from r are returned as they are; a failed write to the file makes
	// Verify and Commit fail too.
	WriteFrom(ctx context.Context, r io.Reader, onWrite func(n int)) (int64, error)
	// Size returns the bytes written so far.
	Size() int64
	// Verify checks that the content hashes to d without storing it yet, and ends writing. After a nil
	// return the content is known to be d's, and Commit(ctx, d) stores it without hashing it again.
	// On a mismatch (ErrDigestMismatch), an unsupported digest (ErrInvalidDigest), an earlier write
	// error or a done ctx, it removes the temporary file and the writer is finished.
	Verify(ctx context.Context, d digest.Digest) error
	// Commit verifies that the content hashes to d (unless Verify(ctx, d) already did), makes it
	// durable (fsync) and links it into place. The temporary file is removed whatever the outcome; on
	// a mismatch it returns ErrDigestMismatch.
	Commit(ctx context.Context, d digest.Digest) error
	// Cancel removes the temporary file.
	Cancel() error
	// Path returns the temporary file's path, so concurrent readers can follow the growing file.
	Path() string
}

// BlobDeleter removes blobs.
type BlobDeleter interface {
	Delete(ctx context.Context, d digest.Digest) error
}

// Uploads manages resumable upload sessions (the POST/PATCH/PUT flow of the distribution spec).
type Uploads interface {
	// StartUpload creates a session and returns its ID.
	StartUpload(ctx context.Context) (string, error)
	// UploadSize returns the bytes received so far, or ErrNotFound.
	UploadSize(ctx context.Context, id string) (int64, error)
	// AppendUpload appends r to the session. offset, when >= 0, must equal the current size, else
	// ErrOffsetMismatch. Returns the new size. A failed append leaves the session at its previous size.
	AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	// CommitUpload verifies the session's content against d and moves it into the blob store. The
	// session is removed on success and on ErrDigestMismatch.
	CommitUpload(ctx context.Context, id string, d digest.Digest) (int64, error)
	// CancelUpload removes the session.
	CancelUpload(ctx context.Context, id string) error
}

// Store is the whole storage API.
type Store interface {
	BlobStatter
	BlobReader
	BlobWriter
	BlobDeleter
	Uploads
}
