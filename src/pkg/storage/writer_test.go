package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

func TestWriterCommit(t *testing.T) {
	ctx := context.Background()
	data := content(700_000)
	tests := []struct {
		name    string
		d       digest.Digest
		wantErr error
	}{
		{"sha256", digest.FromBytes(data), nil},
		{"sha512", sha512Of(data), nil},
		{"sha256 mismatch", digest.FromString("x"), ErrDigestMismatch},
		{"sha512 mismatch", sha512Of([]byte("x")), ErrDigestMismatch},
		{"unsupported", digest.Digest("sha384:" + strings.Repeat("0", 96)), ErrInvalidDigest},
		{"traversal", "sha256:../../../x", ErrInvalidDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, w := newWriter(t, "")
			require.True(t, strings.HasPrefix(w.Path(), filepath.Join(s.Root(), "tmp")+string(filepath.Separator)))
			// Write in uneven chunks.
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 65_537)
				m, err := w.Write(rest[:n])
				require.NoError(t, err)
				require.Equal(t, n, m)
				rest = rest[n:]
			}
			require.Equal(t, int64(len(data)), w.Size())

			err := w.Commit(ctx, tt.d)
			_, statErr := os.Stat(w.Path())
			require.ErrorIs(t, statErr, os.ErrNotExist, "temp file is gone after Commit")
			if !requireCommitted(t, s, err, tt.wantErr, tt.d, len(data)) {
				return
			}

			_, err = w.Write([]byte("late"))
			require.Error(t, err)
			require.Error(t, w.Commit(ctx, tt.d))
			require.NoError(t, w.Cancel())
		})
	}
}

func TestWriterPathFollowsGrowingFile(t *testing.T) {
	ctx := context.Background()
	_, w := newWriter(t, "hello ")

	f, err := os.Open(w.Path())
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 6)
	_, err = io.ReadFull(f, buf)
	require.NoError(t, err)
	require.Equal(t, "hello ", string(buf))

	_, err = w.Write([]byte("world"))
	require.NoError(t, err)
	require.NoError(t, w.Commit(ctx, digest.FromString("hello world")))
	rest, err := io.ReadAll(f)
	require.NoError(t, err)
	require.Equal(t, "world", string(rest), "an open reader keeps following after Commit")
}

func TestWriterCancel(t *testing.T) {
	ctx := context.Background()
	s, w := newWriter(t, "abandoned")
	require.NoError(t, w.Cancel())
	require.NoError(t, w.Cancel(), "second Cancel is a no-op")
	require.Empty(t, files(t, s.Root()))
	require.Error(t, w.Commit(ctx, digest.FromString("abandoned")))
	_, err := s.Stat(ctx, digest.FromString("abandoned"))
	require.ErrorIs(t, err, ErrNotFound)
}

func TestWriterCommitExistingKeepsContent(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	data := []byte("same bytes")
	d := digest.FromBytes(data)
	_, err := s.Put(ctx, d, strings.NewReader(string(data)))
	require.NoError(t, err)
	before, err := os.Stat(s.blobPath(d))
	require.NoError(t, err)

	w, err := s.NewWriter(ctx)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Commit(ctx, d))
	after, err := os.Stat(s.blobPath(d))
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "existing content is left as it is")
	require.Len(t, files(t, s.Root()), 1)
}

func TestWriterCommitCancelledContext(t *testing.T) {
	s, w := newWriter(t, "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, w.Commit(ctx, digest.FromString("x")), context.Canceled)
	require.Empty(t, files(t, s.Root()))
}

func TestWriterSizeAndPathFromAnotherGoroutine(t *testing.T) {
	ctx := context.Background()
	_, w := newWriter(t, "")
	done := make(chan struct{})
	observed := make(chan int64, 1)
	go func() {
		var last int64
		for {
			select {
			case <-done:
				observed <- last
				return
			default:
			}
			size := w.Size()
			if size < last || w.Path() == "" {
				observed <- -1
				return
			}
			last = size
		}
	}()
	chunk := content(4096)
	for range 256 {
		_, err := w.Write(chunk)
		require.NoError(t, err)
	}
	close(done)
	require.GreaterOrEqual(t, <-observed, int64(0), "sizes seen are monotonic")
	require.NoError(t, w.Commit(ctx, digest.FromBytes(bytes.Repeat(chunk, 256))))
}

// chunkReader returns its data in reads of at most n bytes, then err (io.EOF when nil).
type chunkReader struct {
	data []byte
	n    int
	err  error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// WriteFrom hashes on another goroutine; Verify checks without storing; Commit after a successful
// Verify stores without hashing again, after a failed one there is nothing left to store.
func TestWriterWriteFromVerifyCommit(t *testing.T) {
	ctx := context.Background()
	data := content(3<<20 + 12_345) // more chunks than the ring holds
	other := append(bytes.Clone(data[:len(data)-1]), data[len(data)-1]^1)
	tests := []struct {
		name      string
		verify    digest.Digest
		commit    digest.Digest // "" = Cancel after Verify
		verifyErr error
		commitErr error
	}{
		{"sha256", digest.FromBytes(data), digest.FromBytes(data), nil, nil},
		{"sha512", sha512Of(data), sha512Of(data), nil, nil},
		{"verified then cancelled", digest.FromBytes(data), "", nil, nil},
		{"verified, committed as another digest", digest.FromBytes(data), digest.FromBytes(other), nil, ErrDigestMismatch},
		{"mismatch", digest.FromBytes(other), digest.FromBytes(other), ErrDigestMismatch, errWriterClosed},
		{"unsupported", digest.Digest("sha384:" + strings.Repeat("0", 96)), digest.FromBytes(data), ErrInvalidDigest, errWriterClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, w := newWriter(t, "")
			_, err := w.Write(data[:100])
			require.NoError(t, err)
			var seen int64
			n, err := w.WriteFrom(ctx, &chunkReader{data: data[100:], n: 100_003}, func(k int) {
				seen += int64(k)
				fi, err := os.Stat(w.Path())
				require.NoError(t, err)
				require.Equal(t, 100+seen, fi.Size(), "a chunk is in the file when onWrite reports it")
			})
			require.NoError(t, err)
			require.Equal(t, int64(len(data)-100), n)
			require.Equal(t, n, seen)
			require.Equal(t, int64(len(data)), w.Size())

			err = w.Verify(ctx, tt.verify)
			if tt.verifyErr != nil {
				require.ErrorIs(t, err, tt.verifyErr)
				require.Empty(t, files(t, s.Root()), "a failed Verify removes the temporary file")
				require.NoError(t, w.Cancel())
				require.ErrorIs(t, w.Commit(ctx, tt.commit), tt.commitErr)
				require.Empty(t, files(t, s.Root()))
				return
			}
			require.NoError(t, err)
			require.NoError(t, w.Verify(ctx, tt.verify), "Verify again is a no-op")
			require.Equal(t, []string{filepath.Join("tmp", filepath.Base(w.Path()))}, files(t, s.Root()), "verified, not stored yet")
			_, err = w.Write([]byte("late"))
			require.ErrorIs(t, err, errWriterClosed, "writing ended at Verify")
			_, err = w.WriteFrom(ctx, strings.NewReader("late"), nil)
			require.ErrorIs(t, err, errWriterClosed)

			if tt.commit == "" {
				require.NoError(t, w.Cancel())
				require.Empty(t, files(t, s.Root()))
				return
			}
			requireCommitted(t, s, w.Commit(ctx, tt.commit), tt.commitErr, tt.commit, len(data))
		})
	}
}

// WriteFrom returns the source's error as it is; what was read before is in the file and hashed, and
// the writer can still be verified or cancelled.
func TestWriterWriteFromSourceError(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	boom := errors.New("source broke")
	data := content(1 << 20)
	w, err := s.NewWriter(ctx)
	require.NoError(t, err)
	n, err := w.WriteFrom(ctx, &chunkReader{data: data, n: 64 << 10, err: boom}, nil)
	require.ErrorIs(t, err, boom)
	require.Equal(t, int64(len(data)), n)
	require.NoError(t, w.Verify(ctx, digest.FromBytes(data)))
	require.NoError(t, w.Cancel())
	require.Empty(t, files(t, s.Root()))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w, err = s.NewWriter(ctx)
	require.NoError(t, err)
	_, err = w.WriteFrom(cctx, bytes.NewReader(data), nil)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, w.Verify(cctx, digest.FromBytes(data)), context.Canceled)
	require.Empty(t, files(t, s.Root()))
}

// The copy of a blob into a Writer: WriteFrom (hashing on another goroutine) against the same loop
// with Write (hashing inline). Run with -bench Copy -benchtime 20x on an idle machine.
func BenchmarkCopyIntoWriter(b *testing.B) {
	data := content(64 << 20)
	d := digest.FromBytes(data)
	run := func(b *testing.B, copyFn func(w Writer, r io.Reader) error) {
		s, err := NewFS(b.TempDir())
		require.NoError(b, err)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			w, err := s.NewWriter(b.Context())
			require.NoError(b, err)
			require.NoError(b, copyFn(w, bytes.NewReader(data)))
			require.NoError(b, w.Verify(b.Context(), d))
			require.NoError(b, w.Cancel())
		}
	}
	b.Run("WriteFrom", func(b *testing.B) {
		run(b, func(w Writer, r io.Reader) error {
			_, err := w.WriteFrom(b.Context(), r, nil)
			return err
		})
	})
	b.Run("Write", func(b *testing.B) {
		run(b, func(w Writer, r io.Reader) error {
			_, err := io.CopyBuffer(w, struct{ io.Reader }{r}, make([]byte, copyChunk))
			return err
		})
	})
}

// requireCommitted checks the outcome err of committing a blob of size bytes as d into s: with
// wantErr, that error and nothing at all left in s; otherwise the blob stored at its size as the only
// file (the temporary one gone). It reports whether the commit succeeded.
func requireCommitted(t *testing.T, s *FS, err, wantErr error, d digest.Digest, size int) bool {
	t.Helper()
	if wantErr != nil {
		require.ErrorIs(t, err, wantErr)
		require.Empty(t, files(t, s.Root()))
		return false
	}
	require.NoError(t, err)
	got, err := s.Stat(context.Background(), d)
	require.NoError(t, err)
	require.Equal(t, int64(size), got)
	require.Len(t, files(t, s.Root()), 1, "stored, temporary file gone")
	return true
}

// newWriter returns a new test FS and a Writer on it that has been written initial.
func newWriter(t *testing.T, initial string) (*FS, Writer) {
	t.Helper()
	s := newTestFS(t)
	w, err := s.NewWriter(context.Background())
	require.NoError(t, err)
	if initial != "" {
		_, err = w.Write([]byte(initial))
		require.NoError(t, err)
	}
	return s, w
}
