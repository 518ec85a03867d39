package storage

import (
	"bytes"
	"context"
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
			s := newTestFS(t)
			w, err := s.NewWriter(ctx)
			require.NoError(t, err)
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

			err = w.Commit(ctx, tt.d)
			_, statErr := os.Stat(w.Path())
			require.ErrorIs(t, statErr, os.ErrNotExist, "temp file is gone after Commit")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Empty(t, files(t, s.Root()))
				return
			}
			require.NoError(t, err)
			size, err := s.Stat(ctx, tt.d)
			require.NoError(t, err)
			require.Equal(t, int64(len(data)), size)
			require.Len(t, files(t, s.Root()), 1)

			_, err = w.Write([]byte("late"))
			require.Error(t, err)
			require.Error(t, w.Commit(ctx, tt.d))
			require.NoError(t, w.Cancel())
		})
	}
}

func TestWriterPathFollowsGrowingFile(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	w, err := s.NewWriter(ctx)
	require.NoError(t, err)
	_, err = w.Write([]byte("hello "))
	require.NoError(t, err)

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
	s := newTestFS(t)
	w, err := s.NewWriter(ctx)
	require.NoError(t, err)
	_, err = w.Write([]byte("abandoned"))
	require.NoError(t, err)
	require.NoError(t, w.Cancel())
	require.NoError(t, w.Cancel(), "second Cancel is a no-op")
	require.Empty(t, files(t, s.Root()))
	require.Error(t, w.Commit(ctx, digest.FromString("abandoned")))
	_, err = s.Stat(ctx, digest.FromString("abandoned"))
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
	s := newTestFS(t)
	w, err := s.NewWriter(context.Background())
	require.NoError(t, err)
	_, err = w.Write([]byte("x"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, w.Commit(ctx, digest.FromString("x")), context.Canceled)
	require.Empty(t, files(t, s.Root()))
}

func TestWriterSizeAndPathFromAnotherGoroutine(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	w, err := s.NewWriter(ctx)
	require.NoError(t, err)
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
