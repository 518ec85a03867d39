package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// Walk lists every stored blob of both algorithms with its size and time, and nothing else.
func TestWalk(t *testing.T) {
	ctx := context.Background()
	s, err := NewFS(t.TempDir())
	require.NoError(t, err)
	want := map[digest.Digest]int64{}
	for _, data := range []string{"one", "two", "three"} {
		d := digest.FromString(data)
		_, err := s.Put(ctx, d, bytes.NewReader([]byte(data)))
		require.NoError(t, err)
		want[d] = int64(len(data))
	}
	d512 := digest.SHA512.FromString("long")
	_, err = s.Put(ctx, d512, bytes.NewReader([]byte("long")))
	require.NoError(t, err)
	want[d512] = 4
	// Not blobs: a stray name and a directory where a blob would be.
	require.NoError(t, os.WriteFile(filepath.Join(s.blobs, "sha256", "zz"), nil, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(s.blobs, "sha256", "ab", "not-a-digest"), 0o750))
	got := map[digest.Digest]int64{}
	require.NoError(t, s.Walk(ctx, func(b BlobInfo) error {
		got[b.Digest] = b.Size
		require.WithinDuration(t, time.Now(), b.ModTime, time.Minute)
		return nil
	}))
	require.Equal(t, want, got)
	// An error from fn stops the walk.
	stop := os.ErrClosed
	require.ErrorIs(t, s.Walk(ctx, func(BlobInfo) error { return stop }), stop)
}
