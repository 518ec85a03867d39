package proxy

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// A reader of a fill gets every byte but the last while the download runs; the last one only once the
// digest is verified, never when verification failed.
func TestFillReaderHoldsBackLastByte(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"verified", nil, "hello"},
		{"failed", errcode.ErrUpstreamInvalid.New(), "hell"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "write")
			require.NoError(t, os.WriteFile(path, []byte("hello"), 0o600))
			f := newFill()
			f.started(path, 5)
			f.advance(5)
			file, past := f.openTemp()
			require.False(t, past)
			r := &fillReader{ctx: t.Context(), f: f, file: file}
			defer func() { _ = r.Close() }()
			buf := make([]byte, 16)
			n, err := r.Read(buf)
			require.NoError(t, err)
			require.Equal(t, "hell", string(buf[:n]))

			f.finish(c.err)
			rest, err := io.ReadAll(r)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, c.want, "hell"+string(rest))
		})
	}
}

// A new reader never opens the temp file of a fill that is committing, finished, or whose file is gone
// (a failed fill removes it before its error is published): it waits for the outcome instead.
func TestFillOpenTempPastTheFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		setup func(f *fill)
	}{
		{"no file yet after failure", func(f *fill) { f.finish(errcode.ErrBlobUnknown.New()) }},
		{"file removed by a failed fill", func(f *fill) { f.started(filepath.Join(dir, "removed"), 5) }},
		{"committing", func(f *fill) {
			path := filepath.Join(dir, "committing")
			require.NoError(t, os.WriteFile(path, nil, 0o600))
			f.started(path, 0)
			f.beginCommit()
		}},
	}
	for _, c := range cases {
		f := newFill()
		c.setup(f)
		file, past := f.openTemp()
		require.True(t, past, c.name)
		require.Nil(t, file, c.name)
	}
}
