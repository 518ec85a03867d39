package storage

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// newTestFS returns a store in a fresh temp dir.
func newTestFS(t *testing.T) *FS {
	t.Helper()
	s, err := NewFS(filepath.Join(t.TempDir(), "storage"))
	require.NoError(t, err)
	return s
}

// content returns n deterministic bytes.
func content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func sha512Of(b []byte) digest.Digest { return digest.SHA512.FromBytes(b) }

// files lists the regular files under dir (relative paths).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// failingReader returns its data, then err (a reader that fails mid-way).
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// panickingReader returns its data, then panics.
type panickingReader struct{ data []byte }

func (r *panickingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		panic("reader exploded")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errBoom = errors.New("boom")

func TestPutStatOpen(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		data []byte
		dig  func([]byte) digest.Digest
	}{
		{"empty sha256", nil, digest.FromBytes},
		{"small sha256", []byte("hello"), digest.FromBytes},
		{"large sha256", content(1<<20 + 17), digest.FromBytes},
		{"empty sha512", nil, sha512Of},
		{"large sha512", content(300_001), sha512Of},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestFS(t)
			d := tt.dig(tt.data)
			n, err := s.Put(ctx, d, bytes.NewReader(tt.data))
			require.NoError(t, err)
			require.Equal(t, int64(len(tt.data)), n)

			size, err := s.Stat(ctx, d)
			require.NoError(t, err)
			require.Equal(t, int64(len(tt.data)), size)

			hex := d.Encoded()
			require.FileExists(t, filepath.Join(s.Root(), "blobs", string(d.Algorithm()), hex[:2], hex))

			require.True(t, bytes.Equal(tt.data, readAll(t, s, d)))

			if len(tt.data) > 10 {
				b, err := s.Open(ctx, d)
				require.NoError(t, err)
				defer b.Close()
				off, err := b.Seek(5, io.SeekStart)
				require.NoError(t, err)
				require.Equal(t, int64(5), off)
				buf := make([]byte, 5)
				_, err = io.ReadFull(b, buf)
				require.NoError(t, err)
				require.Equal(t, tt.data[5:10], buf)
			}
			require.Empty(t, files(t, filepath.Join(s.Root(), "tmp")))
		})
	}
}

func TestPutFailuresLeaveNothing(t *testing.T) {
	ctx := context.Background()
	data := content(200_000)
	d := digest.FromBytes(data)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		d       digest.Digest
		r       func() io.Reader
		wantErr error
	}{
		{"digest mismatch", ctx, digest.FromString("other"), func() io.Reader { return bytes.NewReader(data) }, ErrDigestMismatch},
		{"sha512 mismatch", ctx, sha512Of([]byte("other")), func() io.Reader { return bytes.NewReader(data) }, ErrDigestMismatch},
		{"truncated content", ctx, d, func() io.Reader { return bytes.NewReader(data[:1000]) }, ErrDigestMismatch},
		{"reader fails mid-way", ctx, d, func() io.Reader { return &failingReader{data: data[:100_000], err: errBoom} }, errBoom},
		{"cancelled context", cancelled, d, func() io.Reader { return bytes.NewReader(data) }, context.Canceled},
		{"unsupported algorithm", ctx, digest.Digest("sha384:" + strings.Repeat("a", 96)), func() io.Reader { return bytes.NewReader(data) }, ErrInvalidDigest},
		{"malformed digest", ctx, digest.Digest("sha256:../../../etc/passwd"), func() io.Reader { return bytes.NewReader(data) }, ErrInvalidDigest},
		{"upper-case hex", ctx, digest.Digest(strings.ToUpper(string(d))), func() io.Reader { return bytes.NewReader(data) }, ErrInvalidDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestFS(t)
			_, err := s.Put(tt.ctx, tt.d, tt.r())
			require.ErrorIs(t, err, tt.wantErr)
			require.Empty(t, files(t, s.Root()), "nothing may be left behind")
			_, err = s.Stat(ctx, d)
			require.ErrorIs(t, err, ErrNotFound)
		})
	}
}

func TestPutPanickingReaderRemovesTemp(t *testing.T) {
	s := newTestFS(t)
	data := content(100_000)
	func() {
		defer func() { require.Equal(t, "reader exploded", recover()) }()
		_, _ = s.Put(context.Background(), digest.FromBytes(data), &panickingReader{data: data[:50_000]})
	}()
	require.Empty(t, files(t, s.Root()))
}

func TestPutExistingReadsNothing(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	data := content(4096)
	d := digest.FromBytes(data)
	_, err := s.Put(ctx, d, bytes.NewReader(data))
	require.NoError(t, err)

	// Even a reader with other content is not read: nothing new is stored.
	cr := &countingReader{r: strings.NewReader("something else")}
	n, err := s.Put(ctx, d, cr)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.Zero(t, cr.n)
	require.Equal(t, data, readAll(t, s, d))
}

func TestReadsOfMissingOrInvalidDigests(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	tests := []struct {
		name string
		d    digest.Digest
	}{
		{"absent sha256", digest.FromString("absent")},
		{"absent sha512", sha512Of([]byte("absent"))},
		{"empty", ""},
		{"traversal", "sha256:../../tmp/x"},
		{"traversal in algorithm", digest.Digest("../../x:" + strings.Repeat("a", 64))},
		{"unsupported algorithm", digest.Digest("md5:" + strings.Repeat("a", 32))},
		{"short hex", "sha256:abcd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Stat(ctx, tt.d)
			require.ErrorIs(t, err, ErrNotFound)
			_, err = s.Open(ctx, tt.d)
			require.ErrorIs(t, err, ErrNotFound)
			require.ErrorIs(t, s.Delete(ctx, tt.d), ErrNotFound)
		})
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	data := []byte("to be deleted")
	d := digest.FromBytes(data)
	_, err := s.Put(ctx, d, bytes.NewReader(data))
	require.NoError(t, err)

	// A reader that opened the blob keeps its content after Delete.
	b, err := s.Open(ctx, d)
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, s.Delete(ctx, d))
	_, err = s.Stat(ctx, d)
	require.ErrorIs(t, err, ErrNotFound)
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.ErrorIs(t, s.Delete(ctx, d), ErrNotFound)

	// It can be stored again.
	_, err = s.Put(ctx, d, bytes.NewReader(data))
	require.NoError(t, err)
}

func TestNewFSRemovesStaleTemp(t *testing.T) {
	root := filepath.Join(t.TempDir(), "storage")
	s, err := NewFS(root)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "tmp", "put-123"), []byte("stale"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "tmp", "dir"), 0o750))
	data := []byte("kept")
	_, err = s.Put(context.Background(), digest.FromBytes(data), bytes.NewReader(data))
	require.NoError(t, err)

	s2, err := NewFS(root)
	require.NoError(t, err)
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	require.NoError(t, err)
	require.Empty(t, entries)
	_, err = s2.Stat(context.Background(), digest.FromBytes(data))
	require.NoError(t, err)
}

func TestOpenBlobCopiesWithoutBuffering(t *testing.T) {
	ctx := context.Background()
	s := newTestFS(t)
	data := content(3 << 20)
	d := sha512Of(data)
	_, err := s.Put(ctx, d, bytes.NewReader(data))
	require.NoError(t, err)
	b, err := s.Open(ctx, d)
	require.NoError(t, err)
	defer b.Close()
	_, isWT := b.(io.WriterTo)
	require.True(t, isWT)
	h := sha512.New()
	_, err = io.Copy(h, b)
	require.NoError(t, err)
	require.Equal(t, d, digest.NewDigest(digest.SHA512, h))
}
