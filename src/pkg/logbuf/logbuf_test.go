package logbuf_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/logbuf"
)

// sink is a concurrency-safe output that records every Write call.
type sink struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	err    error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.writes++
	return s.b.Write(p)
}

func (s *sink) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
func (s *sink) Writes() int    { s.mu.Lock(); defer s.mu.Unlock(); return s.writes }

const never = time.Hour // an interval that never elapses during a test

func TestBufferedUntilClose(t *testing.T) {
	out := &sink{}
	w := logbuf.Wrap(out, never)
	for i := range 100 {
		_, err := fmt.Fprintf(w, "line %d\n", i)
		require.NoError(t, err)
	}
	require.Empty(t, out.String(), "nothing is written before a flush")
	require.NoError(t, w.Close())
	require.Equal(t, 1, out.Writes(), "one write for the whole batch")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 100)
	require.Equal(t, "line 99", lines[99])

	_, err := w.Write([]byte("after close\n"))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(out.String(), "after close\n"), "written through after Close")
	require.NoError(t, w.Close(), "Close twice is harmless")
}

func TestFlushedOnInterval(t *testing.T) {
	out := &sink{}
	w := logbuf.Wrap(out, time.Millisecond)
	defer func() { require.NoError(t, w.Close()) }()
	_, err := w.Write([]byte("hello\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return out.String() == "hello\n" }, 10*time.Second, time.Millisecond)
}

func TestFullBatchWakesTheFlusher(t *testing.T) {
	out := &sink{}
	w := logbuf.Wrap(out, never)
	defer func() { require.NoError(t, w.Close()) }()
	line := strings.Repeat("x", 1023) + "\n"
	for range 64 { // 64 KiB: one batch
		_, err := w.Write([]byte(line))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(out.String()) == 64*1024 }, 10*time.Second, time.Millisecond)
}

// Writes larger than a batch, one of them past the buffer's bound: nothing is dropped, order holds.
func TestBoundedBufferWritesThroughInOrder(t *testing.T) {
	out := &sink{}
	w := logbuf.Wrap(out, never)
	// The flusher may also run (woken by the batch size); either way the output must be a then b.
	a, b := bytes.Repeat([]byte("a"), 3<<20), bytes.Repeat([]byte("b"), 2<<20)
	_, err := w.Write(a)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	// Without Close: b either went through (the bound) or was flushed as a full batch.
	require.Eventually(t, func() bool { return len(out.String()) == len(a)+len(b) }, 10*time.Second, time.Millisecond)
	require.Equal(t, string(a)+string(b), out.String())
	require.NoError(t, w.Close())
	require.Equal(t, len(a)+len(b), len(out.String()))
}

func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	out := &sink{}
	w := logbuf.Wrap(out, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				_, err := fmt.Fprintf(w, "g%d-%d %s\n", g, i, strings.Repeat("z", 200))
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 8*500)
	next := map[string]int{}
	for _, l := range lines {
		var g, i int
		_, err := fmt.Sscanf(l, "g%d-%d", &g, &i)
		require.NoError(t, err, l)
		key := fmt.Sprint(g)
		require.Equal(t, next[key], i, "lines of one writer stay in order")
		next[key]++
		require.True(t, strings.HasSuffix(l, strings.Repeat("z", 200)), "line whole: %q", l)
	}
}

func TestOutputErrorIsReported(t *testing.T) {
	boom := errors.New("disk full")
	out := &sink{err: boom}
	w := logbuf.Wrap(out, never)
	_, err := w.Write([]byte("x\n"))
	require.NoError(t, err, "buffered")
	require.ErrorIs(t, w.Close(), boom)
	_, err = w.Write([]byte("y\n"))
	require.ErrorIs(t, err, boom)
}

func TestZeroIntervalIsUnbuffered(t *testing.T) {
	out := &sink{}
	w := logbuf.Wrap(out, 0)
	_, err := w.Write([]byte("now\n"))
	require.NoError(t, err)
	require.Equal(t, "now\n", out.String())
	require.NoError(t, w.Close())
}
