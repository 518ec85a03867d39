package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/metrics"
)

// Eviction reasons (the reason label of the eviction metrics).
const (
	ReasonQuota     = "quota"
	ReasonWatermark = "watermark"
)

// Options are the Evictor's parts. Metrics, Log and Leases may be nil.
type Options struct {
	Store   Store
	Remover Remover
	Blobs   BlobStore
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Leases serialise MakeRoom per project across every node that shares them (lease.Redis on the
	// nodes' Redis). Nil: serialised in this process only, enough for a single node.
	Leases lease.Locker
}

// Store is what eviction reads and writes in the metadata database: usage and listings, and the
// garbage collector's per-digest condemnation (meta.GCStore), through which it deletes bytes.
type Store interface {
	meta.QuotaStore
	CondemnBlob(ctx context.Context, digest string, repos []int64, cutoff time.Time, bytes bool) (int64, bool, error)
	FinishCondemned(ctx context.Context, digest string, remove func() error) (bool, error)
}

// Evictor frees room by evicting cached (pulled) content, least recently used first.
type Evictor struct {
	store     Store
	remover   Remover
	blobs     BlobStore
	manifests ManifestReader
	m         *metrics.Metrics
	log       *slog.Logger
	leases    lease.Locker // nil: in process only

	locks sync.Map   // project ID -> *sync.Mutex: one MakeRoom per project at a time in this process
	disk  sync.Mutex // one watermark pass at a time
}

// NewEvictor returns an Evictor.
func NewEvictor(o Options) (*Evictor, error) {
	if o.Store == nil || o.Remover == nil || o.Blobs == nil {
		return nil, errors.New("quota: Store, Remover and Blobs are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Evictor{store: o.Store, remover: o.Remover, blobs: o.Blobs, manifests: StorageManifests{Blobs: o.Blobs}, m: o.Metrics, log: o.Log,
		leases: o.Leases}, nil
}

// MakeRoom evicts pulled content of the proxy-cache project p, least recently used group first, until
// need more bytes fit under its storage limit. It never evicts a group with pushed content, nor one that
// holds protect (the digest about to be stored: the image being pulled keeps its manifest and the
// layers it already has). It reports whether need now fits; false when the limit is smaller than need or
// nothing evictable is left. A group holds protect when it records it, references it as a blob, or lists
// it as an index's child (a platform manifest pulled after its index). Projects without a limit, and
// local projects, always fit (the latter are never evicted from: their pushes fail instead).
//
// Calls for one project are serialised in this process and, with Options.Leases, across the nodes
// sharing them: a call waits for the project's lease (a pull waiting on another node's eviction), and
// one whose lease was lost meanwhile (it paused past the TTL) stops evicting before the next group.
func (e *Evictor) MakeRoom(ctx context.Context, p *meta.Project, need int64, protect string) (bool, error) {
	hard := p.StorageLimit
	switch {
	case hard <= 0:
		return true, nil
	case need > hard:
		return false, nil
	}
	fits := func() (bool, error) {
		used, err := e.store.ProjectUsage(ctx, p.ID)
		return used+need <= hard, err
	}
	if ok, err := fits(); ok || err != nil || !p.IsProxy() {
		return ok, err // the common case, without a lock or a lease
	}
	mu, _ := e.locks.LoadOrStore(p.ID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	l, err := e.lease(ctx, p.ID)
	if err != nil {
		return false, err
	}
	if l != nil {
		defer func() { _ = l.Release(context.WithoutCancel(ctx)) }()
	}
	if ok, err := fits(); ok || err != nil { // another call (here or on another node) made the room
		return ok, err
	}
	arts, err := e.store.ListCachedArtifacts(ctx, p.ID)
	if err != nil {
		return false, err
	}
	groups, err := buildGroups(ctx, e.manifests, arts)
	if err != nil {
		return false, err
	}
	for _, g := range groups {
		if g.Pushed || g.Holds(protect) {
			continue
		}
		if l != nil {
			if err := l.Check(ctx); errors.Is(err, lease.ErrLost) {
				return false, fmt.Errorf("quota: evicting from project %s: %w", p.Name, err)
			} // a Redis error: go on, as without the lease
		}
		if err := e.evict(ctx, g, ReasonQuota); err != nil && ctx.Err() != nil {
			return false, err
		} // another failure (logged by evict) leaves that group for a later pass: try the next one
		if ok, err := fits(); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// makeRoomTTL is the TTL of a project's eviction lease, renewed while MakeRoom runs: how long a crashed
// node can hold up the project's evictions on the other nodes.
const makeRoomTTL = 30 * time.Second

// lease takes the eviction lease of project id, waiting while another node holds it, and keeps it
// renewed. It returns nil without Options.Leases, and when the lease cannot be asked for (a Redis
// outage, logged): eviction then goes on serialised in this process only, since a Redis outage must
// not fail pulls, and each removal is safe on its own (docs/quota.md).
func (e *Evictor) lease(ctx context.Context, id int64) (*lease.Lease, error) {
	if e.leases == nil {
		return nil, nil
	}
	name := "quota-evict:" + strconv.FormatInt(id, 10)
	wait := 5 * time.Millisecond
	for {
		l, ok, err := e.leases.TryAcquire(ctx, name, makeRoomTTL)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e.log.WarnContext(ctx, "quota: eviction lease unavailable; evicting serialised in this process only", "lease", name, "err", err)
			return nil, nil
		}
		if ok {
			l.Keep(ctx)
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Passthrough records that content of a proxy-cache project was served without being stored because it
// did not fit in the project's quota.
func (e *Evictor) Passthrough(ctx context.Context, p *meta.Project, repo, digest string, size int64) {
	if e.m != nil {
		e.m.QuotaPassthrough.Inc()
	}
	e.log.WarnContext(ctx, "quota: served without storing: does not fit in the project's storage limit",
		"project", p.Name, "repository", repo, "digest", digest, "size", size, "limit", p.StorageLimit)
}

// evict removes g and deletes the bytes nothing references any more.
func (e *Evictor) evict(ctx context.Context, g *Group, reason string) error {
	gone, err := e.remover.Remove(ctx, g)
	freed := e.sweep(ctx, gone) // what was removed before a failure is swept too
	if e.m != nil {
		e.m.Evictions.WithLabelValues(reason).Inc()
		e.m.EvictedBytes.WithLabelValues(reason).Add(float64(freed))
	}
	if err != nil {
		e.log.WarnContext(ctx, "eviction failed part way", "reason", reason, "repository", g.Repository,
			"manifests", g.Members, "bytes_deleted", freed, "err", err)
		return err
	}
	e.log.InfoContext(ctx, "evicted cached content", "reason", reason, "repository", g.Repository,
		"manifests", g.Members, "last_used", g.LastUsed, "bytes_deleted", freed)
	return nil
}

// DropUnreferenced deletes the bytes of the digests that no repository links or records any more: content
// a proxy stored and then could not keep within the project's quota.
func (e *Evictor) DropUnreferenced(ctx context.Context, digests ...string) {
	e.sweep(ctx, digests)
}
