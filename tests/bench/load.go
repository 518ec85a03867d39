package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Load is a closed-loop load: Conns workers, each with its own keep-alive connection, send GET URL
// back to back until Duration passes or MaxRequests have been started.
type Load struct {
	URL         string
	Conns       int
	Duration    time.Duration
	MaxRequests int64
	Header      http.Header
	WantBytes   int64 // the body length every answer must have (checked); < 0 = any

	// TLS is the client's TLS settings for an https URL (nil: the defaults).
	TLS *tls.Config
}

// maxErrors stops a trial that fails persistently instead of spinning on errors.
const maxErrors = 100

// LoadResult is what a trial measured. A request still in flight when Duration ends is cut: it is not
// counted as a request, but the body bytes it had received count towards the throughput.
type LoadResult struct {
	Requests int64           // answered 200 with a complete body, within the trial
	Errors   int64           // failed requests (not counting the cut ones)
	FirstErr error           `json:"-"` // the first failure
	Bytes    int64           // body bytes received within the trial
	Elapsed  time.Duration   // the trial's length
	Lat      []time.Duration `json:"-"` // sorted
}

// RPS is requests per second.
func (r LoadResult) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Throughput is body bytes per second.
func (r LoadResult) Throughput() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() }

// Pct is the p-th percentile latency (nearest rank; 0 when there is none).
func (r LoadResult) Pct(p float64) time.Duration { return percentile(r.Lat, p) }

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// RunLoad runs one trial. Only a failure to start it is returned as an error; request failures are
// counted in the result.
func RunLoad(ctx context.Context, l Load) (LoadResult, error) {
	if l.Conns <= 0 || l.Duration <= 0 || l.MaxRequests <= 0 {
		return LoadResult{}, errors.New("bench: load needs Conns, Duration and MaxRequests > 0")
	}
	if _, err := http.NewRequest(http.MethodGet, l.URL, nil); err != nil {
		return LoadResult{}, err
	}
	tctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	var (
		started  atomic.Int64
		failures atomic.Int64
		mu       sync.Mutex
		res      LoadResult
		wg       sync.WaitGroup
	)
	perWorker := min(l.MaxRequests/int64(l.Conns)+1, 1<<20)
	begin := time.Now()
	for range l.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := worker{load: l, lat: make([]time.Duration, 0, perWorker)}
			w.run(tctx, &started, &failures)
			mu.Lock()
			defer mu.Unlock()
			res.Requests += w.requests
			res.Errors += w.errors
			res.Bytes += w.bytes
			res.Lat = append(res.Lat, w.lat...)
			if res.FirstErr == nil {
				res.FirstErr = w.firstErr
			}
		}()
	}
	wg.Wait()
	res.Elapsed = min(time.Since(begin), l.Duration)
	slices.Sort(res.Lat)
	return res, ctx.Err()
}

type worker struct {
	load                    Load
	requests, errors, bytes int64
	firstErr                error
	lat                     []time.Duration
}

func (w *worker) fail(err error, failures *atomic.Int64) {
	w.errors++
	if w.firstErr == nil {
		w.firstErr = err
	}
	failures.Add(1)
}

func (w *worker) run(ctx context.Context, started, failures *atomic.Int64) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true,
		ReadBufferSize: 64 << 10, ResponseHeaderTimeout: time.Minute, TLSClientConfig: w.load.TLS}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	buf := make([]byte, 256<<10)
	for ctx.Err() == nil && started.Add(1) <= w.load.MaxRequests && failures.Load() < maxErrors {
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.load.URL, nil) // URL checked by RunLoad
		for k, v := range w.load.Header {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				w.fail(err, failures)
			}
			continue
		}
		n, err := drain(resp.Body, buf)
		_ = resp.Body.Close()
		w.bytes += n
		switch {
		case ctx.Err() != nil && err != nil:
			// cut by the end of the trial: its bytes count, the request does not
		case err != nil:
			w.fail(err, failures)
		case resp.StatusCode != http.StatusOK:
			w.fail(fmt.Errorf("GET %s: status %d", w.load.URL, resp.StatusCode), failures)
		case w.load.WantBytes >= 0 && n != w.load.WantBytes:
			w.fail(fmt.Errorf("GET %s: %d body bytes, want %d", w.load.URL, n, w.load.WantBytes), failures)
		default:
			w.requests++
			w.lat = append(w.lat, time.Since(t0))
		}
	}
}

// drain reads r to its end through buf and returns the byte count (io.Discard's ReadFrom would use a
// small pooled buffer; both targets get the same reader here).
func drain(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
