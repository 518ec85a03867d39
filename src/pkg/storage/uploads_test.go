package storage

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

func TestUploadChunkedCommit(t *testing.T) {
	ctx := context.Background()
	data := content(1<<20 + 3)
	tests := []struct {
		name   string
		d      digest.Digest
		chunks []int
		offset bool // pass offsets (else -1)
	}{
		{"sha256 one chunk", digest.FromBytes(data), []int{len(data)}, true},
		{"sha256 three chunks", digest.FromBytes(data), []int{1, 500_000, len(data) - 500_001}, true},
		{"sha512 chunks without offsets", sha512Of(data), []int{100, len(data) - 100}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, id := newUpload(t, "")
			require.True(t, validUploadID(id))
			size, err := s.UploadSize(ctx, id)
			require.NoError(t, err)
			require.Zero(t, size)

			var off int64
			for _, n := range tt.chunks {
				at := int64(-1)
				if tt.offset {
					at = off
				}
				got, err := s.AppendUpload(ctx, id, at, bytes.NewReader(data[off:off+int64(n)]))
				require.NoError(t, err)
				off += int64(n)
				require.Equal(t, off, got)
			}
			size, err = s.UploadSize(ctx, id)
			require.NoError(t, err)
			require.Equal(t, int64(len(data)), size)

			n, err := s.CommitUpload(ctx, id, tt.d)
			require.NoError(t, err)
			require.Equal(t, int64(len(data)), n)
			_, err = s.UploadSize(ctx, id)
			require.ErrorIs(t, err, ErrNotFound, "session is gone after commit")

			require.True(t, bytes.Equal(data, readAll(t, s, tt.d)))
			require.Len(t, files(t, s.Root()), 1)
		})
	}
}

func TestUploadEmptyBlob(t *testing.T) {
	ctx := context.Background()
	s, id := newUpload(t, "")
	n, err := s.CommitUpload(ctx, id, digest.FromBytes(nil))
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestUploadOffsetMismatch(t *testing.T) {
	ctx := context.Background()
	s, id := newUpload(t, "abc")
	for _, off := range []int64{0, 2, 4, 1000} {
		size, err := s.AppendUpload(ctx, id, off, strings.NewReader("def"))
		require.ErrorIs(t, err, ErrOffsetMismatch, "offset %d", off)
		require.Equal(t, int64(3), size, "the current size comes with the mismatch")
	}
	size, err := s.AppendUpload(ctx, id, 3, strings.NewReader("def"))
	require.NoError(t, err)
	require.Equal(t, int64(6), size)
}

func TestUploadFailedAppendTruncates(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		r     io.Reader
		panic bool
	}{
		{"reader fails mid-way", ctx, &failingReader{data: content(100_000), err: errBoom}, false},
		{"reader panics mid-way", ctx, &panickingReader{data: content(70_000)}, true},
		{"cancelled context", cancelled, bytes.NewReader(content(10)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, id := newUpload(t, "")
			first := []byte("first chunk")
			_, err := s.AppendUpload(ctx, id, 0, bytes.NewReader(first))
			require.NoError(t, err)

			if tt.panic {
				func() {
					defer func() { require.NotNil(t, recover()) }()
					_, _ = s.AppendUpload(tt.ctx, id, int64(len(first)), tt.r)
				}()
			} else {
				_, err = s.AppendUpload(tt.ctx, id, int64(len(first)), tt.r)
				require.Error(t, err)
			}
			size, err := s.UploadSize(ctx, id)
			require.NoError(t, err)
			require.Equal(t, int64(len(first)), size, "failed append is rolled back")

			// The session goes on from where it was.
			_, err = s.AppendUpload(ctx, id, size, strings.NewReader(" second"))
			require.NoError(t, err)
			_, err = s.CommitUpload(ctx, id, digest.FromString("first chunk second"))
			require.NoError(t, err)
		})
	}
}

func TestUploadCommitMismatchRemovesSession(t *testing.T) {
	ctx := context.Background()
	for _, d := range []digest.Digest{digest.FromString("other"), sha512Of([]byte("other"))} {
		t.Run(string(d.Algorithm()), func(t *testing.T) {
			s, id := newUpload(t, "content")
			_, err := s.CommitUpload(ctx, id, d)
			require.ErrorIs(t, err, ErrDigestMismatch)
			_, err = s.UploadSize(ctx, id)
			require.ErrorIs(t, err, ErrNotFound)
			require.Empty(t, files(t, s.Root()), "nothing left behind")
		})
	}
}

func TestUploadCommitInvalidDigestKeepsSession(t *testing.T) {
	ctx := context.Background()
	s, id := newUpload(t, "content")
	_, err := s.CommitUpload(ctx, id, "sha256:nothex")
	require.ErrorIs(t, err, ErrInvalidDigest)
	size, err := s.UploadSize(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(7), size)
}

func TestUploadCommitExistingBlob(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	d := digest.FromString("content")
	_, err := s.Put(ctx, d, strings.NewReader("content"))
	require.NoError(t, err)
	before, err := os.Stat(s.blobPath(d))
	require.NoError(t, err)

	id, err := s.StartUpload(ctx)
	require.NoError(t, err)
	_, err = s.AppendUpload(ctx, id, 0, strings.NewReader("content"))
	require.NoError(t, err)
	n, err := s.CommitUpload(ctx, id, d)
	require.NoError(t, err)
	require.Equal(t, int64(7), n)
	after, err := os.Stat(s.blobPath(d))
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after))
	require.Len(t, files(t, s.Root()), 1)
}

func TestUploadCancel(t *testing.T) {
	ctx := context.Background()
	s, id := newUpload(t, "x")
	require.NoError(t, s.CancelUpload(ctx, id))
	require.ErrorIs(t, s.CancelUpload(ctx, id), ErrNotFound)
	_, err := s.AppendUpload(ctx, id, -1, strings.NewReader("x"))
	require.ErrorIs(t, err, ErrNotFound)
	require.Empty(t, files(t, s.Root()))
}

func TestUploadInvalidIDs(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	live, err := s.StartUpload(ctx)
	require.NoError(t, err)
	// A file an attacker would like to reach.
	secret := filepath.Join(s.Root(), "blobs", "secret")
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o600))

	ids := []string{
		"",
		".",
		"..",
		"../blobs",
		"../../etc/passwd",
		"../" + live,
		live + "/../" + live,
		"/" + live,
		live + "/data",
		strings.ToUpper(live),
		live[:31],
		live + "0",
		live[:31] + "g",
		strings.Repeat("/", 32),
		strings.Repeat(".", 32),
		live[:30] + "..",
		live[:31] + "\x00",
		filepath.Join(s.Root(), "uploads", live),
		"0123456789abcdef0123456789abcdef", // well-formed but unknown
	}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			_, err := s.UploadSize(ctx, id)
			require.ErrorIs(t, err, ErrNotFound)
			_, err = s.AppendUpload(ctx, id, -1, strings.NewReader("x"))
			require.ErrorIs(t, err, ErrNotFound)
			_, err = s.CommitUpload(ctx, id, digest.FromString("x"))
			require.ErrorIs(t, err, ErrNotFound)
			require.ErrorIs(t, s.CancelUpload(ctx, id), ErrNotFound)
		})
	}
	require.FileExists(t, secret)
	size, err := s.UploadSize(ctx, live)
	require.NoError(t, err)
	require.Zero(t, size, "the live session was not touched")
}

func TestUploadIDsAreUnique(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	seen := map[string]bool{}
	for range 200 {
		id, err := s.StartUpload(ctx)
		require.NoError(t, err)
		require.False(t, seen[id])
		seen[id] = true
		require.Regexp(t, `^[0-9a-f]{32}$`, id)
	}
}

func TestConcurrentAppendsAreSerialised(t *testing.T) {
	ctx := context.Background()
	s, id := newUpload(t, "")
	const workers = 20
	chunk := content(10_000)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			_, errs[i] = s.AppendUpload(ctx, id, -1, bytes.NewReader(chunk))
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	size, err := s.UploadSize(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(workers*len(chunk)), size)
	_, err = s.CommitUpload(ctx, id, digest.FromBytes(bytes.Repeat(chunk, workers)))
	require.NoError(t, err)
	require.Empty(t, s.locks.m, "lock entries are released")
}

func TestPurgeUploads(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	old, err := s.StartUpload(ctx)
	require.NoError(t, err)
	fresh, err := s.StartUpload(ctx)
	require.NoError(t, err)
	long := time.Now().Add(-48 * time.Hour)
	require.NoError(t, os.Chtimes(s.uploadData(old), long, long))
	// A start that crashed between mkdir and create.
	crashed := "00000000000000000000000000000000"
	require.NoError(t, os.Mkdir(s.uploadDir(crashed), 0o750))
	require.NoError(t, os.Chtimes(s.uploadDir(crashed), long, long))
	// Not a session: left alone.
	require.NoError(t, os.Mkdir(filepath.Join(s.Root(), "uploads", "other"), 0o750))

	n, err := s.PurgeUploads(ctx, time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = s.UploadSize(ctx, old)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.UploadSize(ctx, fresh)
	require.NoError(t, err)
	require.DirExists(t, filepath.Join(s.Root(), "uploads", "other"))
}

// newUpload returns a new test FS and an upload session started on it, holding initial.
func newUpload(t *testing.T, initial string) (*FS, string) {
	t.Helper()
	ctx := context.Background()
	s := newTestFS(t)
	id, err := s.StartUpload(ctx)
	require.NoError(t, err)
	if initial != "" {
		_, err = s.AppendUpload(ctx, id, 0, strings.NewReader(initial))
		require.NoError(t, err)
	}
	return s, id
}
