package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
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
	// Targets, when set, replace URL and WantBytes: each worker cycles through them, starting at its own
	// offset (many keys instead of one hot key).
	Targets []Target
	// SampleHeader, when set, is read on every SampleEvery-th answer of each worker (its first answer
	// included) and its values counted (LoadResult.Sampled); with WantSample, a sampled value outside
	// WantSample fails that request, so a trial cannot silently measure another path than it claims.
	SampleHeader string
	SampleEvery  int // 0 = 100
	WantSample   []string
	// ServerPid, when set, is the server process whose user+system CPU time the trial records
	// (LoadResult.ServerCPU).
	ServerPid int
	// Method is the request method, GET when empty. For HEAD the answer's Content-Length is checked
	// against the target's length instead of the (empty) body.
	Method string
}

// Target is one URL of a load with the body length its answers must have (< 0 = any).
type Target struct {
	URL   string
	Bytes int64
}

func (l Load) targets() []Target {
	if len(l.Targets) > 0 {
		return l.Targets
	}
	return []Target{{URL: l.URL, Bytes: l.WantBytes}}
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
	Lat      []time.Duration `json:"-"`          // sorted
	Sampled  map[string]int  `json:",omitempty"` // values of Load.SampleHeader on the sampled answers
	// ServerCPU is the server's (Load.ServerPid) user+system CPU time during the trial, ClientCPU this
	// process's, and ClientCores the CPUs this process may run on: ClientBusy tells whether the load
	// generator, rather than the server, was the bound.
	ServerCPU   time.Duration
	ClientCPU   time.Duration
	ClientCores int
}

// ServerCPUPerRequest is the server's CPU seconds per answered request (0 when not measured).
func (r LoadResult) ServerCPUPerRequest() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.ServerCPU.Seconds() / float64(r.Requests)
}

// ClientBusy is the share of its CPUs the load generator used during the trial (0..1; 0 when unknown).
func (r LoadResult) ClientBusy() float64 {
	if r.ClientCores == 0 || r.Elapsed <= 0 {
		return 0
	}
	return r.ClientCPU.Seconds() / (r.Elapsed.Seconds() * float64(r.ClientCores))
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
	for _, t := range l.targets() {
		if _, err := http.NewRequest(http.MethodGet, t.URL, nil); err != nil {
			return LoadResult{}, err
		}
	}
	if l.SampleEvery <= 0 {
		l.SampleEvery = 100
	}
	cpu0, err := trialCPU(l.ServerPid)
	if err != nil {
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
	for i := range l.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := worker{load: l, targets: l.targets(), next: i, lat: make([]time.Duration, 0, perWorker)}
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
			for k, n := range w.sampled {
				if res.Sampled == nil {
					res.Sampled = map[string]int{}
				}
				res.Sampled[k] += n
			}
		}()
	}
	wg.Wait()
	res.Elapsed = min(time.Since(begin), l.Duration)
	cpu1, err := trialCPU(l.ServerPid)
	if err != nil {
		return res, err
	}
	res.ServerCPU, res.ClientCPU, res.ClientCores = cpu1.server-cpu0.server, cpu1.client-cpu0.client, ownCores()
	slices.Sort(res.Lat)
	return res, ctx.Err()
}

// cpuTimes are the CPU times of a trial's server (0 when none is measured) and of this process.
type cpuTimes struct{ server, client time.Duration }

func trialCPU(serverPid int) (c cpuTimes, err error) {
	if serverPid > 0 {
		if c.server, err = CPUTime(serverPid); err != nil {
			return c, fmt.Errorf("bench: server CPU time: %w", err)
		}
	}
	c.client, err = CPUTime(os.Getpid())
	return c, err
}

type worker struct {
	load                    Load
	targets                 []Target
	next                    int // index of the next target
	requests, errors, bytes int64
	firstErr                error
	lat                     []time.Duration
	answered                int64
	sampled                 map[string]int
}

// sample counts the sampled header of every SampleEvery-th answer and returns an error when its value
// is not one the load wants.
func (w *worker) sample(h http.Header) error {
	w.answered++
	if w.load.SampleHeader == "" || (w.answered-1)%int64(w.load.SampleEvery) != 0 {
		return nil
	}
	v := h.Get(w.load.SampleHeader)
	if w.sampled == nil {
		w.sampled = map[string]int{}
	}
	w.sampled[v]++
	if len(w.load.WantSample) > 0 && !slices.Contains(w.load.WantSample, v) {
		return fmt.Errorf("%s: %s %q, want one of %q", w.load.URL, w.load.SampleHeader, v, w.load.WantSample)
	}
	return nil
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
		tg := w.targets[w.next%len(w.targets)]
		w.next++
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, w.method(), tg.URL, nil) // URL checked by RunLoad
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
		if req.Method == http.MethodHead {
			n = resp.ContentLength // a HEAD answer has no body: its announced length is checked
		}
		switch {
		case ctx.Err() != nil && err != nil:
			// cut by the end of the trial: its bytes count, the request does not
		case err != nil:
			w.fail(err, failures)
		case resp.StatusCode != http.StatusOK:
			w.fail(fmt.Errorf("%s %s: status %d", req.Method, tg.URL, resp.StatusCode), failures)
		case tg.Bytes >= 0 && n != tg.Bytes:
			w.fail(fmt.Errorf("%s %s: %d body bytes, want %d", req.Method, tg.URL, n, tg.Bytes), failures)
		default:
			el := time.Since(t0)
			if err := w.sample(resp.Header); err != nil {
				w.fail(err, failures)
				continue
			}
			w.requests++
			w.lat = append(w.lat, el)
		}
	}
}

// method is the load's request method (GET by default).
func (w *worker) method() string {
	if w.load.Method == "" {
		return http.MethodGet
	}
	return w.load.Method
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
