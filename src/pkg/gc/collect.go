package gc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// listPage is how many rows one listing query returns.
const listPage = 5000

// Collector runs the protocol once per Collect call. Runs must not overlap (Runner's lease sees to it);
// writers may run at any time.
type Collector struct {
	store meta.GCStore
	blobs Blobs
	grace time.Duration
	now   func() time.Time
}

// NewCollector returns a collector; grace <= 0 is DefaultGracePeriod; now is the clock (nil: time.Now).
func NewCollector(store meta.GCStore, blobs Blobs, grace time.Duration, now func() time.Time) *Collector {
	if grace <= 0 {
		grace = DefaultGracePeriod
	}
	if now == nil {
		now = time.Now
	}
	return &Collector{store: store, blobs: blobs, grace: grace, now: now}
}

// run is the state of one collection.
type run struct {
	c      *Collector
	p      Params
	log    *Log
	cutoff time.Time
	res    Result
	// refs caches the references of each manifest digest read during the run.
	refs map[string][]string
}

// Collect runs one collection: finish leftover tombstones, delete untagged artifacts (when asked),
// mark, sweep links and bytes, purge lapsed pins. Everything older than the mark's start minus the
// grace period and not referenced at that moment, nor pinned since, is removed.
func (c *Collector) Collect(ctx context.Context, p Params, log *Log) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	start := c.now()
	r := &run{c: c, p: p, log: log, cutoff: start.Add(-c.grace), refs: map[string][]string{}}
	log.Printf("garbage collection: delete_untagged=%t dry_run=%t workers=%d grace=%s cutoff=%s",
		p.DeleteUntagged, p.DryRun, max(p.Workers, 1), c.grace, r.cutoff.UTC().Format(time.RFC3339))
	if !p.DryRun {
		if err := r.finishLeftovers(ctx); err != nil {
			return r.res, err
		}
	}
	if p.DeleteUntagged {
		if err := r.deleteUntagged(ctx); err != nil {
			return r.res, err
		}
	}
	m, err := r.mark(ctx)
	if err != nil {
		return r.res, err
	}
	if err := r.sweep(ctx, m); err != nil {
		return r.res, err
	}
	if !p.DryRun {
		n, err := c.store.PurgePins(ctx, r.cutoff)
		if err != nil {
			return r.res, err
		}
		log.Printf("purged %d lapsed pins", n)
	}
	log.Printf("done in %s: %d artifacts, %d blob links and %d blobs (%d bytes) %s; %d digests pinned by writers during the run",
		c.now().Sub(start).Round(time.Millisecond), r.res.ArtifactsDeleted, r.res.LinksDeleted, r.res.BlobsDeleted,
		r.res.BytesFreed, map[bool]string{true: "would be deleted (dry run)", false: "deleted"}[p.DryRun], r.res.Pinned)
	return r.res, nil
}

// finishLeftovers removes the bytes of blobs a stopped run condemned but did not remove.
func (r *run) finishLeftovers(ctx context.Context) error {
	left, err := r.c.store.ListCondemned(ctx)
	if err != nil {
		return err
	}
	for _, d := range left {
		if _, err := r.c.store.FinishCondemned(ctx, d, func() error { return removeBytes(ctx, r.c.blobs, d) }); err != nil {
			return err
		}
		r.log.Printf("removed blob %s condemned by an earlier run", d)
	}
	return nil
}

// marks is the outcome of the mark phase.
type marks struct {
	// used holds repoID -> digests the repository's manifests reference.
	used map[int64]map[string]struct{}
	// unknown holds repositories with a manifest that could not be read: none of their links is touched.
	unknown map[int64]bool
	// manifests holds the digests of every artifact (their bytes are kept).
	manifests map[string]struct{}
}

// allArtifacts pages through every artifact.
func (r *run) allArtifacts(ctx context.Context) ([]meta.GCArtifact, error) {
	var all []meta.GCArtifact
	var after int64
	for {
		page, err := r.c.store.ListGCArtifacts(ctx, after, listPage)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < listPage {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// references returns the digests the manifest d names, reading each digest once per run.
func (r *run) references(ctx context.Context, d string) ([]string, error) {
	if refs, ok := r.refs[d]; ok {
		return refs, nil
	}
	body, err := readManifest(ctx, r.c.blobs, d)
	if err != nil {
		return nil, err
	}
	refs, err := manifestRefs(body)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	r.refs[d] = refs
	return refs, nil
}

// mark reads every manifest and records what each repository references. It starts after the cutoff
// was fixed, so a manifest it does not see was recorded after the cutoff, by a writer that pinned its
// references: the sweep's recheck finds those pins.
func (r *run) mark(ctx context.Context) (*marks, error) {
	arts, err := r.allArtifacts(ctx)
	if err != nil {
		return nil, err
	}
	m := &marks{used: map[int64]map[string]struct{}{}, unknown: map[int64]bool{}, manifests: map[string]struct{}{}}
	for _, a := range arts {
		m.manifests[a.Digest] = struct{}{}
		refs, err := r.references(ctx, a.Digest)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.log.Printf("WARNING: cannot read manifest %s@%s (%v): no blob link of %s is collected", a.Repository, a.Digest, err, a.Repository)
			m.unknown[a.RepositoryID] = true
			continue
		}
		set := m.used[a.RepositoryID]
		if set == nil {
			set = map[string]struct{}{}
			m.used[a.RepositoryID] = set
		}
		for _, d := range refs {
			set[d] = struct{}{}
		}
	}
	r.log.Printf("marked %d artifacts in %d repositories", len(arts), len(m.used))
	return m, nil
}

// candidate is one digest the sweep looks at: links to drop and whether its bytes may go.
type candidate struct {
	digest string
	repos  []int64
	bytes  bool
	size   int64
}

// sweep lists unreferenced links and stored blobs older than the cutoff and removes them, each digest
// rechecked under its lock (CondemnBlob).
func (r *run) sweep(ctx context.Context, m *marks) error {
	cands := map[string]*candidate{}
	kept := map[string]struct{}{} // digests with a link that stays
	var afterD string
	var afterR int64
	for {
		page, err := r.c.store.ListGCBlobLinks(ctx, afterD, afterR, listPage)
		if err != nil {
			return err
		}
		for _, l := range page {
			_, used := m.used[l.RepositoryID][l.Digest]
			if used || m.unknown[l.RepositoryID] || !l.CreationTime.Before(r.cutoff) {
				kept[l.Digest] = struct{}{}
				continue
			}
			c := cands[l.Digest]
			if c == nil {
				c = &candidate{digest: l.Digest}
				cands[l.Digest] = c
			}
			c.repos = append(c.repos, l.RepositoryID)
		}
		if len(page) < listPage {
			break
		}
		afterD, afterR = page[len(page)-1].Digest, page[len(page)-1].RepositoryID
	}
	err := r.c.blobs.Walk(ctx, func(b storage.BlobInfo) error {
		d := b.Digest.String()
		if _, ok := kept[d]; ok {
			return nil
		}
		if _, ok := m.manifests[d]; ok || !b.ModTime.Before(r.cutoff) {
			return nil
		}
		c := cands[d]
		if c == nil {
			c = &candidate{digest: d}
			cands[d] = c
		}
		c.bytes, c.size = true, b.Size
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	r.log.Printf("%d candidate digests (unreferenced links or bytes older than the cutoff)", len(cands))
	return r.sweepAll(ctx, cands)
}

// sweepBatch is how many digests one pair of sweep transactions handles: one commit (one fsync on
// SQLite) per batch instead of per digest, while a writer pinning one of them waits at most that long.
const sweepBatch = 100

// sweepAll processes the candidates in digest order, in batches, with p.Workers goroutines.
func (r *run) sweepAll(ctx context.Context, cands map[string]*candidate) error {
	sorted := make([]*candidate, 0, len(cands))
	for _, c := range cands {
		sorted = append(sorted, c)
	}
	slices.SortFunc(sorted, func(a, b *candidate) int { return strings.Compare(a.digest, b.digest) })
	work := make(chan []*candidate)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range max(r.p.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range work {
				res, err := r.sweepBatch(ctx, batch)
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				r.res.LinksDeleted += res.LinksDeleted
				r.res.BlobsDeleted += res.BlobsDeleted
				r.res.BytesFreed += res.BytesFreed
				r.res.Pinned += res.Pinned
				mu.Unlock()
			}
		}()
	}
	for len(sorted) > 0 && ctx.Err() == nil {
		n := min(len(sorted), sweepBatch)
		work <- sorted[:n]
		sorted = sorted[n:]
	}
	close(work)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// sweepBatch removes the batch's links and, where nothing else holds them, their bytes: one
// transaction condemns (rechecking each digest under its lock), a second removes the condemned bytes.
func (r *run) sweepBatch(ctx context.Context, batch []*candidate) (Result, error) {
	var res Result
	if r.p.DryRun {
		for _, c := range batch {
			r.log.Printf("dry run: would delete %d links of %s%s", len(c.repos), c.digest, map[bool]string{true: " and its bytes", false: ""}[c.bytes])
			res.LinksDeleted += int64(len(c.repos))
			if c.bytes {
				res.BlobsDeleted++
				res.BytesFreed += c.size
			}
		}
		return res, nil
	}
	in := make([]meta.GCCandidate, len(batch))
	for i, c := range batch {
		in[i] = meta.GCCandidate{Digest: c.digest, Repos: c.repos, Bytes: c.bytes}
	}
	out, err := r.c.store.CondemnBlobs(ctx, in, r.cutoff)
	if err != nil {
		return res, err
	}
	var condemned []*candidate
	var digests []string
	for i, c := range batch {
		res.LinksDeleted += out[i].Links
		switch {
		case out[i].Condemned:
			condemned = append(condemned, c)
			digests = append(digests, c.digest)
		case out[i].Links == 0:
			res.Pinned++ // pinned, relinked or referenced meanwhile: kept
		default:
			r.log.Printf("deleted %d unreferenced links of %s", out[i].Links, c.digest)
		}
	}
	if len(condemned) == 0 {
		return res, nil
	}
	removed, err := r.c.store.FinishCondemnedAll(ctx, digests, func(d string) error { return removeBytes(ctx, r.c.blobs, d) })
	if err != nil {
		return res, err
	}
	for i, c := range condemned {
		if !removed[i] {
			r.log.Printf("blob %s was written again while condemned: kept", c.digest)
			res.Pinned++
			continue
		}
		r.log.Printf("deleted blob %s (%d bytes)", c.digest, c.size)
		res.BlobsDeleted++
		res.BytesFreed += c.size
	}
	return res, nil
}
