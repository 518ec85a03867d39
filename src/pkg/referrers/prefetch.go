package referrers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/metrics"
)

// Fetcher reads manifests and blobs through the proxy, which stores what it fetches (proxy.Service).
type Fetcher interface {
	GetManifest(ctx context.Context, repo content.Repo, ref string) (*content.Manifest, error)
	// FetchBlob returns once the blob is stored locally (at once when it already is).
	FetchBlob(ctx context.Context, repo content.Repo, d digest.Digest) error
}

type prefetchKey struct{}

// IsPrefetch reports whether ctx belongs to a background prefetch (whose pulls must not start more).
func IsPrefetch(ctx context.Context) bool { return ctx.Value(prefetchKey{}) != nil }

// Prefetcher warms the referrers of subjects pulled through proxy projects with the toggle on: the
// upstream list (into the cache, through the controller, so it is deduplicated with client requests),
// the referrer manifests and their blobs (into local storage, through the proxy), so verification keeps
// working through a later upstream outage. Work is bounded by a worker count; a subject already queued
// or running is not queued twice; when every worker is busy and the queue is full the request is dropped
// and counted (the client's own request still fetches what it needs). A referrer fetched completely is
// not read again for a while (prefetchMemo), so that popular subjects do not re-read their referrers'
// blobs from storage on every pull.
type Prefetcher struct {
	ctl     *Controller
	fetch   Fetcher
	log     *slog.Logger
	metrics *metrics.Metrics
	timeout time.Duration
	queue   chan job
	wg      sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pending map[string]bool
	idle    chan struct{}        // closed when pending becomes empty; nil while it is
	recent  map[string]time.Time // repo@referrer -> when it was last fetched completely
}

// prefetchMemo is how long a referrer fetched completely is not fetched again; maxRecent bounds the
// memo (it is cleared when full).
const (
	prefetchMemo = 10 * time.Minute
	maxRecent    = 65536
)

type job struct {
	ctx     context.Context
	repo    content.Repo
	subject digest.Digest
}

// NewPrefetcher starts workers goroutines; Close stops them. log may be nil.
func NewPrefetcher(ctl *Controller, fetch Fetcher, workers int, timeout time.Duration, m *metrics.Metrics, log *slog.Logger) *Prefetcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	p := &Prefetcher{ctl: ctl, fetch: fetch, log: log, metrics: m, timeout: timeout,
		queue: make(chan job, 64*workers), pending: map[string]bool{}, recent: map[string]time.Time{}}
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// SubjectPulled queues a prefetch of subject's referrers when repo's project proxies the referrers API.
// It never blocks the caller, and does nothing after Close.
func (p *Prefetcher) SubjectPulled(ctx context.Context, repo content.Repo, subject digest.Digest) {
	if p == nil || !repo.Project.ProxyReferrerAPI() || IsPrefetch(ctx) {
		return
	}
	key := repo.Name + "@" + subject.String()
	jctx := context.WithValue(context.WithoutCancel(ctx), prefetchKey{}, true)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.pending[key] {
		return
	}
	select { // under mu: Close cannot close the queue meanwhile
	case p.queue <- job{ctx: jctx, repo: repo, subject: subject}:
		if len(p.pending) == 0 {
			p.idle = make(chan struct{})
		}
		p.pending[key] = true
	default:
		p.outcome("dropped")
	}
}

// Wait blocks until no prefetch is queued or running, or ctx ends (tests, graceful shutdown).
func (p *Prefetcher) Wait(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the workers after the queued jobs. Later SubjectPulled calls do nothing.
func (p *Prefetcher) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.queue)
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Prefetcher) done(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, key)
	if len(p.pending) == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

func (p *Prefetcher) work() {
	defer p.wg.Done()
	for j := range p.queue {
		ctx, cancel := context.WithTimeout(j.ctx, p.timeout)
		err := p.run(ctx, j.repo, j.subject)
		cancel()
		if err != nil {
			p.log.WarnContext(ctx, "referrers prefetch failed", "repository", j.repo.Name, "subject", j.subject, "err", err)
			p.outcome("error")
		} else {
			p.outcome("ok")
		}
		p.done(j.repo.Name + "@" + j.subject.String())
	}
}

// run fetches the upstream referrers list of subject and every referrer it names that is not known to be
// held: its manifest and, for an image manifest, its config and layers. A referrer that fails does not
// stop the others; the failures are returned together.
func (p *Prefetcher) run(ctx context.Context, repo content.Repo, subject digest.Digest) error {
	f := p.ctl.upstream(ctx, repo, subject, content.ReferrersQuery{})
	if f.entry == nil {
		return f.err
	}
	var errs []error
	for _, d := range f.entry.manifests {
		key := repo.Name + "@" + d.Digest.String()
		if p.fetchedRecently(key) {
			continue
		}
		if err := p.referrer(ctx, repo, d.Digest); err != nil {
			errs = append(errs, fmt.Errorf("referrer %s: %w", d.Digest, err))
			continue
		}
		p.remember(key)
	}
	return errors.Join(errs...)
}

// referrer stores one referrer manifest and its blobs locally.
func (p *Prefetcher) referrer(ctx context.Context, repo content.Repo, d digest.Digest) error {
	m, err := p.fetch.GetManifest(ctx, repo, d.String())
	if err != nil {
		return err
	}
	for _, b := range blobsOf(m) {
		if err := p.fetch.FetchBlob(ctx, repo, b); err != nil {
			return err
		}
	}
	return nil
}

func (p *Prefetcher) fetchedRecently(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.recent[key]
	return ok && p.ctl.opts.Now().Sub(t) < prefetchMemo
}

func (p *Prefetcher) remember(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.recent) >= maxRecent {
		clear(p.recent)
	}
	p.recent[key] = p.ctl.opts.Now()
}

func (p *Prefetcher) outcome(o string) {
	if p.metrics != nil {
		p.metrics.PrefetchOutcomes.WithLabelValues(o).Inc()
	}
}

// blobsOf returns the config and layer digests of an image manifest (none for an index).
func blobsOf(m *content.Manifest) []digest.Digest {
	var im ocispec.Manifest
	if json.Unmarshal(m.Body, &im) != nil {
		return nil
	}
	var out []digest.Digest
	if im.Config.Digest != "" {
		out = append(out, im.Config.Digest)
	}
	for _, l := range im.Layers {
		out = append(out, l.Digest)
	}
	return out
}
