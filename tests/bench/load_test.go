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

	t.Run("HEAD checks the announced length", func(t *testing.T) {
		for _, tt := range []struct {
			want       int64
			wantErrors bool
		}{{5, false}, {6, true}} {
			res, err := RunLoad(context.Background(), Load{URL: srv.URL, Conns: 2, Duration: time.Minute, MaxRequests: 10,
				Header: hdr, WantBytes: tt.want, Method: http.MethodHead})
			require.NoError(t, err)
			require.Equal(t, tt.wantErrors, res.Errors > 0, "want %d", tt.want)
			require.Equal(t, int64(10)*boolInt(!tt.wantErrors), res.Requests)
			require.Zero(t, res.Bytes, "a HEAD answer has no body")
		}
	})
	t.Run("time cap ends the trial", func(t *testing.T) {
		// Stops by the deadline, not by the request cap: it ran at least the whole Duration (a context
		// deadline never fires early), and the trial's length is reported as Duration itself.
		t0 := time.Now()
		res, err := RunLoad(context.Background(), Load{URL: srv.URL, Conns: 2, Duration: 50 * time.Millisecond, MaxRequests: 1 << 40, Header: hdr, WantBytes: 5})
		require.GreaterOrEqual(t, time.Since(t0), 50*time.Millisecond)
		require.NoError(t, err)
		require.Zero(t, res.Errors)
		require.LessOrEqual(t, res.Requests, served.Load(), "only answered requests count")
		require.Equal(t, 50*time.Millisecond, res.Elapsed)
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

}

func TestPairedRatios(t *testing.T) {
	rps := func(v ...int64) []LoadResult {
		out := make([]LoadResult, len(v))
		for i, x := range v {
			out[i] = LoadResult{Requests: x, Elapsed: time.Second}
		}
		return out
	}
	tests := []struct {
		name        string
		berth, base []LoadResult
		want        Ratios
	}{
		// Per-round ratios 0.5, 0.8, 0.5: their median is 0.5, where the ratio of the medians (60/100)
		// would be 0.6.
		{"median of per-round ratios, not ratio of medians", rps(50, 80, 60), rps(100, 100, 120), Ratios{Med: 0.5, Lo: 0.5, Hi: 0.8, N: 3}},
		{"even count", rps(10, 30, 20, 40), rps(10, 10, 10, 10), Ratios{Med: 2.5, Lo: 1, Hi: 4, N: 4}},
		{"a zero baseline round is left out", rps(10, 30), rps(0, 10), Ratios{Med: 3, Lo: 3, Hi: 3, N: 1}},
		{"unpaired rounds are left out", rps(10, 30, 99), rps(10, 10), Ratios{Med: 2, Lo: 1, Hi: 3, N: 2}},
		{"none", nil, nil, Ratios{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Comparison{Berth: tt.berth, Base: tt.base}.Ratio(FigRPS)
			require.Equal(t, tt.want.N, got.N)
			require.InDelta(t, tt.want.Med, got.Med, 1e-9)
			require.InDelta(t, tt.want.Lo, got.Lo, 1e-9)
			require.InDelta(t, tt.want.Hi, got.Hi, 1e-9)
		})
	}
	require.Equal(t, "0.50 (rounds 0.50-0.80)", Comparison{Berth: rps(50, 80, 60), Base: rps(100, 100, 120)}.Ratio(FigRPS).String())
	require.Equal(t, "-", Ratios{}.String())

	// Cold pulls: through / direct throughput per round, paired by index.
	pull := func(ms int) Pull { return Pull{Bytes: 1000, Elapsed: time.Duration(ms) * time.Millisecond} }
	pr := pullRatios([]Pull{pull(100), pull(100), pull(200)}, []Pull{pull(400), pull(200), pull(200)})
	require.InDelta(t, 0.5, pr.Med, 1e-9)
	require.InDelta(t, 0.25, pr.Lo, 1e-9)
	require.InDelta(t, 1, pr.Hi, 1e-9)

	// Cold referrers: Berth / direct latency per subject, paired by index (not the sorted lists).
	d := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	cr := Cold{Berth: d(3, 1, 8), Direct: d(1, 1, 2)}.Ratio()
	require.InDelta(t, 3, cr.Med, 1e-9)
	require.InDelta(t, 1, cr.Lo, 1e-9)
	require.InDelta(t, 4, cr.Hi, 1e-9)
}
