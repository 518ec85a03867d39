package referrers

import (
	"context"
	"encoding/json"
	"io"
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
	OpenBlob(ctx context.Context, repo content.Repo, d digest.Digest) (content.BlobContent, error)
}

type prefetchKey struct{}

// IsPrefetch reports whether ctx belongs to a background prefetch (whose pulls must not start more).
func IsPrefetch(ctx context.Context) bool { return ctx.Value(prefetchKey{}) != nil }

// Prefetcher warms the referrers of subjects pulled through proxy projects with the toggle on: the
// list (into the cache), the referrer manifests and their blobs (into local storage), so verification
// keeps working through a later upstream outage. Work is bounded by a worker count; a subject already
// queued or running is not queued twice; when every worker is busy and the queue is full the request is
// dropped and counted (the client's own request still fetches what it needs).
type Prefetcher struct {
	ctl     *Controller
	fetch   Fetcher
	log     *slog.Logger
	metrics *metrics.Metrics
	timeout time.Duration
	queue   chan job

	mu      sync.Mutex
	pending map[string]bool
	wg      sync.WaitGroup
}

type job struct {
	ctx     context.Context
	repo    content.Repo
	subject digest.Digest
}

// NewPrefetcher starts workers goroutines; Close stops them.
func NewPrefetcher(ctl *Controller, fetch Fetcher, workers int, timeout time.Duration, m *metrics.Metrics, log *slog.Logger) *Prefetcher {
	p := &Prefetcher{ctl: ctl, fetch: fetch, log: log, metrics: m, timeout: timeout,
		queue: make(chan job, 64*workers), pending: map[string]bool{}}
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// SubjectPulled queues a prefetch of subject's referrers when repo's project proxies the referrers API.
// It never blocks the caller.
func (p *Prefetcher) SubjectPulled(ctx context.Context, repo content.Repo, subject digest.Digest) {
	if p == nil || !repo.Project.ProxyReferrerAPI() || IsPrefetch(ctx) {
		return
	}
	key := repo.Name + "@" + subject.String()
	p.mu.Lock()
	if p.pending[key] {
		p.mu.Unlock()
		return
	}
	p.pending[key] = true
	p.mu.Unlock()
	jctx := context.WithValue(context.WithoutCancel(ctx), prefetchKey{}, true)
	select {
	case p.queue <- job{ctx: jctx, repo: repo, subject: subject}:
	default:
		p.done(key)
		p.outcome("dropped")
	}
}

// Close stops the workers after the queued jobs.
func (p *Prefetcher) Close() {
	close(p.queue)
	p.wg.Wait()
}

func (p *Prefetcher) done(key string) {
	p.mu.Lock()
	delete(p.pending, key)
	p.mu.Unlock()
}

func (p *Prefetcher) work() {
	defer p.wg.Done()
	for j := range p.queue {
		ctx, cancel := context.WithTimeout(j.ctx, p.timeout)
		err := p.run(ctx, j.repo, j.subject)
		cancel()
		p.done(j.repo.Name + "@" + j.subject.String())
		if err != nil {
			p.log.WarnContext(ctx, "referrers prefetch failed", "repository", j.repo.Name, "subject", j.subject, "err", err)
			p.outcome("error")
			continue
		}
		p.outcome("ok")
	}
}

func (p *Prefetcher) run(ctx context.Context, repo content.Repo, subject digest.Digest) error {
	pg, err := p.ctl.ListReferrers(ctx, repo, subject, content.ReferrersQuery{N: p.ctl.opts.MaxPageSize})
	if err != nil {
		return err
	}
	for _, d := range pg.Manifests {
		m, err := p.fetch.GetManifest(ctx, repo, d.Digest.String())
		if err != nil {
			return err
		}
		for _, b := range blobsOf(m) {
			if err := p.drain(ctx, repo, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// drain reads a blob through the proxy so it is stored locally.
func (p *Prefetcher) drain(ctx context.Context, repo content.Repo, d digest.Digest) error {
	b, err := p.fetch.OpenBlob(ctx, repo, d)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	_, err = io.Copy(io.Discard, b)
	return err
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
