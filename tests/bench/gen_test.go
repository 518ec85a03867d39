package bench

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

func TestContentReadAtMatchesSequentialRead(t *testing.T) {
	const size = 3*genBlock + 12345
	c := NewContent(42, size)
	all := c.Bytes()
	require.Len(t, all, size)

	tests := []struct {
		name     string
		off, len int64
	}{
		{"start", 0, 100},
		{"inside the stamp", 3, 4},
		{"across a block boundary", genBlock - 5, 20},
		{"a whole block and more", genBlock / 2, 2*genBlock + 7},
		{"tail", size - 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := make([]byte, tt.len)
			n, err := c.ReadAt(p, tt.off)
			require.NoError(t, err)
			require.Equal(t, int(tt.len), n)
			require.Equal(t, all[tt.off:tt.off+tt.len], p)
		})
	}

	t.Run("past the end", func(t *testing.T) {
		p := make([]byte, 20)
		n, err := c.ReadAt(p, size-10)
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, 10, n)
		require.Equal(t, all[size-10:], p[:10])
		_, err = c.ReadAt(p, size)
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("reader from an offset", func(t *testing.T) {
		got, err := io.ReadAll(c.Reader(genBlock + 1))
		require.NoError(t, err)
		require.Equal(t, all[genBlock+1:], got)
	})
}

func TestContentIsDeterministicAndBlocksDiffer(t *testing.T) {
	a, b := NewContent(7, 2*genBlock).Bytes(), NewContent(7, 2*genBlock).Bytes()
	require.Equal(t, a, b, "same seed, same bytes")
	require.False(t, bytes.Equal(a[:genBlock], a[genBlock:]), "blocks differ")
	require.False(t, bytes.Equal(a, NewContent(8, 2*genBlock).Bytes()), "seeds differ")
}

func TestContentDigest(t *testing.T) {
	c := NewContent(3, genBlock+99)
	sum := sha256.Sum256(c.Bytes())
	require.Equal(t, digest.NewDigestFromBytes(digest.SHA256, sum[:]), c.Digest())
}
