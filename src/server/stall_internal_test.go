package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deadlineRecorder is a ResponseWriter that records the deadlines http.ResponseController sets on it
// and, for each write, the write deadline in force.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	reads, writes []time.Time
	writeAt       []time.Time // the write deadline when each Write or ReadFrom chunk arrived
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.reads = append(d.reads, t)
	return nil
}
func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.writes = append(d.writes, t)
	return nil
}
func (d *deadlineRecorder) Write(p []byte) (int, error) {
	d.writeAt = append(d.writeAt, d.writes[len(d.writes)-1])
	return d.ResponseRecorder.Write(p)
}

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestStallWriterMovesTheDeadlineWithProgress(t *testing.T) {
	const timeout = time.Minute
	big := bytes.Repeat([]byte("x"), 3*stallChunk+10)
	cases := []struct {
		name   string
		write  func(w http.ResponseWriter) (int64, error)
		chunks int
	}{
		{"Write", func(w http.ResponseWriter) (int64, error) { n, err := w.Write(big); return int64(n), err }, 4},
		{"ReadFrom", func(w http.ResponseWriter) (int64, error) {
			return w.(io.ReaderFrom).ReadFrom(bytes.NewReader(big))
		}, 4},
		{"ReadFrom a limited reader", func(w http.ResponseWriter) (int64, error) {
			lr := &io.LimitedReader{R: bytes.NewReader(big), N: 2*stallChunk + 1}
			n, err := w.(io.ReaderFrom).ReadFrom(lr)
			require.Zero(t, lr.N, "the limit is accounted for")
			return n, err
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(0, 0), step: time.Second}
			g := &stallGuard{timeout: timeout, now: clock.now}
			rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
			w := g.wrap(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			n, err := tc.write(w)
			require.NoError(t, err)
			w.extend() // what logRequests does when the handler returned
			require.Equal(t, int64(rec.Body.Len()), n)
			require.True(t, bytes.HasPrefix(big, rec.Body.Bytes()))
			// One deadline per chunk, set just before it, and one at the end; each later than the one before.
			require.Len(t, rec.writes, tc.chunks+1)
			for i := 1; i < len(rec.writes); i++ {
				require.Equal(t, time.Second, rec.writes[i].Sub(rec.writes[i-1]))
			}
			require.Equal(t, time.Unix(1, 0).Add(timeout), rec.writes[0])
			// Every write of chunk i (io.Copy may split it) went out under the deadline set for it.
			require.Equal(t, rec.writes[:tc.chunks], slices.Compact(slices.Clone(rec.writeAt)), "each chunk has a deadline of its own")
		})
	}
}

func TestStallBodyClearsTheReadDeadlineAtTheEnd(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	g := &stallGuard{timeout: time.Minute, now: clock.now}
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest(http.MethodPut, "/", strings.NewReader(strings.Repeat("b", 100)))
	w := g.wrap(rec, r)
	buf := make([]byte, 40)
	var got int
	for {
		n, err := r.Body.Read(buf)
		got += n
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
	}
	w.extend()
	require.Equal(t, 100, got)
	require.GreaterOrEqual(t, len(rec.reads), 5, "a deadline at the start and one per Read")
	require.Equal(t, time.Unix(1, 0).Add(time.Minute), rec.reads[0], "set at the request's start")
	set := rec.reads[:len(rec.reads)-1]
	for i := 1; i < len(set); i++ {
		require.True(t, set[i].After(set[i-1]), "moved forward by every Read")
	}
	require.True(t, rec.reads[len(rec.reads)-1].IsZero(), "cleared at the end of the body")
}

func TestStallGuardLeavesBodilessRequestsAlone(t *testing.T) {
	g := &stallGuard{timeout: time.Minute, now: time.Now}
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	g.wrap(rec, r).extend()
	require.Equal(t, http.NoBody, r.Body)
	require.Empty(t, rec.reads)
}
