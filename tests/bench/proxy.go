package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// ProxyResult is issue 3's figures: cold pulls of a big blob through a proxy-cache project vs directly
// from the upstream, and concurrent cold pullers.
type ProxyResult struct {
	Size    int64
	Direct  []Pull // one per round, straight from the upstream
	Through []Pull // one per round, through a fresh Berth (cold)
	Conc    Concurrent

	// The same rounds with the upstream pacing its sends (none when ProxyLimitedRate is 0): context for
	// links slower than loopback, not the figure.
	Paced []PacedRounds
}

// PacedRounds are cold pull rounds with the upstream sending each GET at Rate bytes/s.
type PacedRounds struct {
	Rate    int64
	Direct  []Pull
	Through []Pull
}

// pacedTenGbit is the second paced rate (10 Gbit/s), run after ProxyLimitedRate's rounds whenever those run.
const pacedTenGbit = 1_250_000_000

// Pull is one timed download.
type Pull struct {
	Elapsed       time.Duration
	AllButLast    time.Duration // until every byte but the last had arrived (Berth holds the last one back until the blob is verified)
	Bytes         int64
	UpstreamBytes int64 // blob bytes the upstream sent meanwhile
	UpstreamGets  int64
	Mem           Memory        // Berth's: RSS when idle before the pull, Peak during it (through Berth only)
	CPU           time.Duration // Berth's user+system CPU time during the pull (through Berth only)
	Busy          float64       // share of the machine's CPU time (all CPUs, all processes) busy during the pull
}

// Throughput is bytes per second.
func (p Pull) Throughput() float64 { return float64(p.Bytes) / p.Elapsed.Seconds() }

// Concurrent is Pullers simultaneous cold pulls of one blob through Berth.
type Concurrent struct {
	Pullers       int
	Elapsed       time.Duration // until the last puller had every byte
	Fastest       time.Duration
	Verified      int // pullers whose bytes hashed to the digest
	UpstreamBytes int64
	UpstreamGets  int64
	UpstreamReqs  int64
	Mem           Memory
}

// RunProxy starts the generator upstream and, per round, pulls a cold blob from it directly and
// through a fresh Berth (alternating which goes first), then pulls one more cold blob with Pullers
// concurrent clients through a fresh Berth. With ProxyLimitedRate, the rounds are repeated with an
// upstream that sends at that rate and then at 10 Gbit/s, for context. Berth's peak RSS is VmHWM,
// reset once the project exists.
func (r *Runner) RunProxy(ctx context.Context) (res ProxyResult, err error) {
	cfg := r.Cfg
	res.Size = cfg.ProxyBlobSize
	up, upURL, err := startChild(ctx, cfg.Self, r.dir, r.cpus, ModeUpstream)
	if err != nil {
		return res, err
	}
	defer r.stopProc(up, &err)
	upReg := &Registry{URL: upURL, Client: newClient()}
	defer upReg.Client.CloseIdleConnections()

	// Every pull gets a blob of its own (cold everywhere): seeds 100+ unlimited, 200+ and 300+ paced.
	register := func(seed uint64, rate int64) (digest.Digest, error) {
		c := NewContent(seed, cfg.ProxyBlobSize)
		d := c.Digest()
		return d, upReg.RegisterBlob(ctx, BlobSpec{Digest: d, Seed: c.Seed, Size: c.Size, Rate: rate})
	}
	const repo = "lib/big"
	r.progress("  proxy: generating %d blobs of %s (digests)", cfg.ProxyRounds+1, MiB(float64(cfg.ProxyBlobSize)))
	if res.Direct, res.Through, err = r.pullRounds(ctx, upReg, repo, "", func(i int) (digest.Digest, error) { return register(uint64(100+i), 0) }); err != nil {
		return res, err
	}
	conc, err := register(100+uint64(cfg.ProxyRounds), 0)
	if err != nil {
		return res, err
	}
	if res.Conc, err = r.concurrentPull(ctx, upReg, upURL, repo, conc, cfg.ProxyBlobSize); err != nil {
		return res, err
	}
	if cfg.ProxyLimitedRate <= 0 {
		return res, nil
	}
	rates := []int64{cfg.ProxyLimitedRate}
	if cfg.ProxyLimitedRate != pacedTenGbit {
		rates = append(rates, pacedTenGbit)
	}
	for k, rate := range rates {
		pr := PacedRounds{Rate: rate}
		label := fmt.Sprintf(" (upstream at %s/s)", MiB(float64(rate)))
		pr.Direct, pr.Through, err = r.pullRounds(ctx, upReg, repo, label, func(i int) (digest.Digest, error) {
			return register(uint64(200+100*k+i), rate)
		})
		res.Paced = append(res.Paced, pr)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// pullRounds runs ProxyRounds rounds of a direct and a through-Berth cold pull of blob(i).
func (r *Runner) pullRounds(ctx context.Context, upReg *Registry, repo, label string, blob func(i int) (digest.Digest, error)) (direct, through []Pull, err error) {
	cfg := r.Cfg
	for i := range cfg.ProxyRounds {
		d, err := blob(i)
		if err != nil {
			return direct, through, err
		}
		pullDirect := func() error {
			p, err := r.directPull(ctx, upReg, upReg.URL+"/v2/"+repo+"/blobs/"+d.String(), cfg.ProxyBlobSize)
			direct = append(direct, p)
			if err == nil {
				r.progress("  proxy round %d/%d%s: direct %s in %s (%s/s)", i+1, cfg.ProxyRounds, label, MiB(float64(p.Bytes)),
					p.Elapsed.Round(time.Millisecond), MiB(p.Throughput()))
			}
			return err
		}
		pullThrough := func() error {
			p, err := r.throughPull(ctx, upReg, upReg.URL, repo, d, cfg.ProxyBlobSize)
			through = append(through, p)
			if err == nil {
				r.progress("  proxy round %d/%d%s: berth %s in %s (%s/s; all but the last byte in %s), upstream sent %s, peak RSS %s, Berth CPU %s",
					i+1, cfg.ProxyRounds, label, MiB(float64(p.Bytes)), p.Elapsed.Round(time.Millisecond), MiB(p.Throughput()),
					p.AllButLast.Round(time.Millisecond), MiB(float64(p.UpstreamBytes)), MiB(float64(p.Mem.Peak)), p.CPU)
			}
			return err
		}
		first, second := pullDirect, pullThrough
		if i%2 == 1 {
			first, second = pullThrough, pullDirect
		}
		if err := first(); err != nil {
			return direct, through, err
		}
		if err := second(); err != nil {
			return direct, through, err
		}
	}
	return direct, through, nil
}

// directPull downloads u (ending in the blob's digest) on a new connection, timed, checks the sha256 of
// what it received against that digest, and reports what the upstream sent.
func (r *Runner) directPull(ctx context.Context, upReg *Registry, u string, size int64) (Pull, error) {
	if err := upReg.ResetStats(ctx); err != nil {
		return Pull{}, err
	}
	p, got, err := timedGet(ctx, u, size, sha256.New())
	if err != nil {
		return p, err
	}
	if want := digest.Digest(u[strings.LastIndexByte(u, '/')+1:]); got != want {
		return p, fmt.Errorf("GET %s: received bytes hashing to %s", u, got)
	}
	st, err := upReg.Stats(ctx)
	p.UpstreamBytes, p.UpstreamGets = st.BlobBytes, st.BlobGets
	return p, err
}

// throughPull starts a fresh Berth (with extra serve arguments) with a proxy-cache project over the
// upstream and pulls d through it, checking the sha256 of what it received against d.
func (r *Runner) throughPull(ctx context.Context, upReg *Registry, upURL, repo string, d digest.Digest, size int64, extra ...string) (p Pull, err error) {
	b, err := r.startBerth(ctx, extra...)
	if err != nil {
		return p, err
	}
	defer r.stopBerth(b, &err)
	if err := b.ProxyProject(ctx, "px", upURL, false); err != nil {
		return p, err
	}
	idle, err := resetPeak(b.Pid())
	if err != nil {
		return p, err
	}
	if err := upReg.ResetStats(ctx); err != nil {
		return p, err
	}
	cpu0, err := CPUTime(b.Pid())
	if err != nil {
		return p, err
	}
	p, got, err := timedGet(ctx, b.URL+"/v2/px/"+repo+"/blobs/"+d.String(), size, sha256.New())
	if err != nil {
		return p, err
	}
	if got != d {
		return p, fmt.Errorf("through Berth: received bytes hashing to %s, want %s", got, d)
	}
	cpu1, err := CPUTime(b.Pid())
	if err != nil {
		return p, err
	}
	p.CPU = cpu1 - cpu0
	if p.Mem, err = ReadMemory(b.Pid()); err != nil {
		return p, err
	}
	p.Mem.RSS = idle
	st, err := upReg.Stats(ctx)
	p.UpstreamBytes, p.UpstreamGets = st.BlobBytes, st.BlobGets
	return p, err
}

// concurrentPull starts n pullers of the same cold blob at once through a fresh Berth; each hashes what
// it receives.
func (r *Runner) concurrentPull(ctx context.Context, upReg *Registry, upURL, repo string, d digest.Digest, size int64) (c Concurrent, err error) {
	n := r.Cfg.Pullers
	c.Pullers = n
	b, err := r.startBerth(ctx)
	if err != nil {
		return c, err
	}
	defer r.stopBerth(b, &err)
	if err := b.ProxyProject(ctx, "px", upURL, false); err != nil {
		return c, err
	}
	idle, err := resetPeak(b.Pid())
	if err != nil {
		return c, err
	}
	if err := upReg.ResetStats(ctx); err != nil {
		return c, err
	}
	u := b.URL + "/v2/px/" + repo + "/blobs/" + d.String()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		gate  = make(chan struct{})
		begin time.Time
	)
	c.Fastest = time.Duration(1<<63 - 1)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			h := sha256.New()
			p, got, err := timedGet(ctx, u, size, h)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				first = cmpOr(first, err)
			case got != d:
				first = cmpOr(first, fmt.Errorf("a puller received bytes hashing to %s, want %s", got, d))
			default:
				c.Verified++
				c.Fastest = min(c.Fastest, p.Elapsed)
			}
		}()
	}
	begin = time.Now()
	close(gate)
	wg.Wait()
	c.Elapsed = time.Since(begin)
	if c.Mem, err = ReadMemory(b.Pid()); err != nil {
		return c, err
	}
	c.Mem.RSS = idle
	st, err := upReg.Stats(ctx)
	if err != nil {
		return c, err
	}
	c.UpstreamBytes, c.UpstreamGets, c.UpstreamReqs = st.BlobBytes, st.BlobGets, st.Requests
	r.progress("  proxy %d concurrent cold pullers: all done in %s, %d verified, upstream sent %s in %d GETs, peak RSS %s",
		n, c.Elapsed.Round(time.Millisecond), c.Verified, MiB(float64(c.UpstreamBytes)), c.UpstreamGets, MiB(float64(c.Mem.Peak)))
	return c, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// resetPeak returns pid's current RSS and resets its VmHWM.
func resetPeak(pid int) (int64, error) {
	m, err := ReadMemory(pid)
	if err != nil {
		return 0, err
	}
	if err := ResetPeak(pid); err != nil {
		return 0, fmt.Errorf("reset VmHWM of %d: %w", pid, err)
	}
	return m.RSS, nil
}
