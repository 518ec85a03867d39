package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunLoad(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Header.Get("X-Want") != "yes" {
			http.Error(w, "missing header", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("hello"))
	}))
	t.Cleanup(srv.Close)
	hdr := http.Header{"X-Want": {"yes"}}

	tests := []struct {
		name       string
		load       Load
		wantOK     int64
		wantErrors bool
	}{
		{"request cap", Load{URL: srv.URL, Conns: 3, Duration: time.Minute, MaxRequests: 50, Header: hdr, WantBytes: 5}, 50, false},
		{"wrong length", Load{URL: srv.URL, Conns: 2, Duration: time.Minute, MaxRequests: 10, Header: hdr, WantBytes: 6}, 0, true},
		{"wrong status", Load{URL: srv.URL, Conns: 2, Duration: time.Minute, MaxRequests: 10, WantBytes: -1}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := RunLoad(context.Background(), tt.load)
			require.NoError(t, err)
			require.Equal(t, tt.wantOK, res.Requests)
			require.Equal(t, tt.wantErrors, res.Errors > 0)
			require.Equal(t, tt.wantErrors, res.FirstErr != nil)
			require.Len(t, res.Lat, int(res.Requests))
			require.Equal(t, res.Requests*5, res.Bytes*boolInt(!tt.wantErrors))
		})
	}

	t.Run("time cap ends the trial", func(t *testing.T) {
		// Stops by the deadline, not by the request cap; no timing is asserted beyond that.
		res, err := RunLoad(context.Background(), Load{URL: srv.URL, Conns: 2, Duration: 50 * time.Millisecond, MaxRequests: 1 << 40, Header: hdr, WantBytes: 5})
		require.NoError(t, err)
		require.Zero(t, res.Errors)
		require.Positive(t, res.Requests)
		require.LessOrEqual(t, res.Elapsed, 50*time.Millisecond)
	})
	t.Run("invalid load", func(t *testing.T) {
		_, err := RunLoad(context.Background(), Load{URL: srv.URL})
		require.Error(t, err)
	})
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func TestPercentileAndMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, percentile(tt.sorted, tt.p), "p%v of %v", tt.p, tt.sorted)
	}
	require.Equal(t, 0.0, median(nil))
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))

	c := Comparison{
		Berth: []LoadResult{{Requests: 50, Elapsed: time.Second}, {Requests: 80, Elapsed: time.Second}, {Requests: 60, Elapsed: time.Second}},
		Base:  []LoadResult{{Requests: 100, Elapsed: time.Second}, {Requests: 100, Elapsed: time.Second}, {Requests: 120, Elapsed: time.Second}},
	}
	require.InDelta(t, 0.6, c.Ratio(FigRPS), 1e-9)
	lo, hi := c.RoundRatios(FigRPS)
	require.InDelta(t, 0.5, lo, 1e-9)
	require.InDelta(t, 0.8, hi, 1e-9)
}
