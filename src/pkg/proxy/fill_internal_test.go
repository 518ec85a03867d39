package proxy

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// startedFill returns a fill over a temp file holding data, all of it written, and a reader on it.
func startedFill(t *testing.T, data string) (*fill, *fillReader) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "write")
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	f := newFill()
	f.started(path, int64(len(data)))
	f.advance(len(data))
	file, past := f.openTemp(nil)
	require.False(t, past)
	r := &fillReader{ctx: t.Context(), f: f, file: file}
	t.Cleanup(func() { _ = r.Close() })
	return f, r
}

// A reader of a fill gets every byte but the last while the download runs; the last one once the
// digest is verified (whatever happens when storing the blob afterwards), never when verification failed.
func TestFillReaderHoldsBackLastByte(t *testing.T) {
	failed := errcode.ErrUpstreamInvalid.New()
	cases := []struct {
		name   string
		end    func(f *fill)
		err    error
		want   string
		before bool // the reader completes before finish
	}{
		{"verified and stored", func(f *fill) { f.verify(); f.finish(nil) }, nil, "hello", false},
		{"verified, not stored yet", func(f *fill) { f.verify() }, nil, "hello", true},
		{"verified, storing failed", func(f *fill) { f.verify(); f.finish(errcode.ErrUpstreamUnavailable.New()) }, nil, "hello", false},
		{"verification failed", func(f *fill) { f.finish(failed) }, failed, "hell", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, r := startedFill(t, "hello")
			buf := make([]byte, 16)
			n, err := r.Read(buf)
			require.NoError(t, err)
			require.Equal(t, "hell", string(buf[:n]))

			c.end(f)
			rest, err := io.ReadAll(r)
			require.ErrorIs(t, err, c.err)
			require.Equal(t, c.want, "hell"+string(rest))
			select {
			case <-f.done:
				require.False(t, c.before)
			default:
				require.True(t, c.before)
			}
		})
	}
}

// chunkSink is an io.ReaderFrom that reports each source it is handed and what it read from it.
type chunkSink struct {
	got     bytes.Buffer
	sources chan io.Reader
}

func (s *chunkSink) Write(p []byte) (int, error) { return s.got.Write(p) }

func (s *chunkSink) ReadFrom(r io.Reader) (int64, error) {
	n, err := s.got.ReadFrom(r)
	s.sources <- r
	return n, err
}

// WriteTo hands the available range of the temp file to the destination's ReadFrom as an
// io.LimitedReader over the *os.File (what net/http sends with sendfile), with the same hold-back as Read.
func TestFillReaderWriteToHoldsBackLastByte(t *testing.T) {
	failed := errcode.ErrUpstreamInvalid.New()
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"verified", nil, "hello"},
		{"verification failed", failed, "hell"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, r := startedFill(t, "hello")
			sink := &chunkSink{sources: make(chan io.Reader, 4)}
			type result struct {
				n   int64
				err error
			}
			res := make(chan result, 1)
			go func() {
				n, err := r.WriteTo(sink)
				res <- result{n, err}
			}()
			src := <-sink.sources
			lr, ok := src.(*io.LimitedReader)
			require.True(t, ok, "a LimitedReader, got %T", src)
			_, ok = lr.R.(*os.File)
			require.True(t, ok, "over the file, got %T", lr.R)
			require.Equal(t, "hell", sink.got.String(), "the last byte is held back")

			if c.err == nil {
				f.verify()
			} else {
				f.finish(c.err)
			}
			got := <-res
			require.ErrorIs(t, got.err, c.err)
			require.Equal(t, int64(len(c.want)), got.n)
			require.Equal(t, c.want, sink.got.String())
		})
	}
}

// A reader whose own request ends stops waiting, without the held-back byte.
func TestFillReaderContextEnds(t *testing.T) {
	_, r := startedFill(t, "hello")
	ctx, cancel := context.WithCancel(t.Context())
	r.ctx = ctx
	buf := make([]byte, 16)
	n, err := r.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "hell", string(buf[:n]))
	cancel()
	_, err = r.Read(buf)
	require.ErrorIs(t, err, context.Canceled)
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
		{"verified", func(f *fill) {
			path := filepath.Join(dir, "verified")
			require.NoError(t, os.WriteFile(path, nil, 0o600))
			f.started(path, 0)
			f.beginCommit()
			f.verify()
		}},
	}
	for _, c := range cases {
		f := newFill()
		c.setup(f)
		file, past := f.openTemp(nil)
		require.True(t, past, c.name)
		require.Nil(t, file, c.name)
	}
}

// The group's wait returns once every fill started so far has left it.
func TestFillGroupWait(t *testing.T) {
	g := newFillGroup()
	require.NoError(t, g.wait(t.Context()), "idle from the start")
	a, leader := g.join("a")
	require.True(t, leader)
	b, _ := g.join("b")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, g.wait(ctx), context.Canceled, "two fills run")
	g.remove("a", a)
	require.ErrorIs(t, g.wait(ctx), context.Canceled, "one fill runs")
	g.remove("b", b)
	require.NoError(t, g.wait(t.Context()))
}

// A reader that joined a fill before its temp file existed reads the whole blob even when the fill
// outran it: verified, not kept, its file removed and the fill finished before the reader opened it
// (the race that made one pull of a blob over the quota download it twice). A reader that gave up
// before the file existed leaves no handle open.
func TestFillReservedReaderOutrunByFill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "write")
	require.NoError(t, os.WriteFile(path, []byte("hello"), 0o600))
	f := newFill()
	reader, gone := &readerSlot{}, &readerSlot{}
	f.reserve(reader)
	f.reserve(gone)
	f.release(gone)

	f.started(path, 5)
	require.Nil(t, gone.file, "released before the file existed")
	f.advance(5)
	f.beginCommit()
	f.verify()
	f.skipStore()
	require.NoError(t, os.Remove(path))
	f.finish(nil)

	file, past := f.openTemp(nil)
	require.True(t, past, "without a reservation the fill is past its file")
	require.Nil(t, file)
	file, past = f.openTemp(reader)
	require.False(t, past)
	r := &fillReader{ctx: t.Context(), f: f, file: file}
	defer func() { _ = r.Close() }()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	f.release(reader) // taken: nothing left to close
	require.Nil(t, reader.file)
}
