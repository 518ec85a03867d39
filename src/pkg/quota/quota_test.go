package quota_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/lifecycle"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/storage"
)

func TestDenied(t *testing.T) {
	err := quota.Denied(&meta.QuotaError{Hard: 50 << 20, Used: 49<<20 + 512<<10, Adding: 1363149})
	e := errcode.As(err)
	require.NotNil(t, e)
	require.True(t, errcode.IsCode(err, errcode.ErrDenied))
	require.Equal(t, 403, e.Code.Status)
	require.Equal(t, "Quota exceeded when processing the request of adding 1.3 MiB of storage resource, which when updated to current usage of 49.5 MiB will exceed the configured upper limit of 50.0 MiB.", e.Message)
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 30: "5.0 GiB"} {
		require.Equal(t, want, quota.FormatBytes(n))
	}
}

// env is a real store and blob store with an Evictor over them.
type env struct {
	t     *testing.T
	ctx   context.Context
	store meta.Store
	blobs *storage.FS
	ev    *quota.Evictor
	m     *metrics.Metrics
	clock time.Time
}

func eachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	for name, url := range map[string]func(testing.TB) string{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			fs, s := contenttest.StoresOn(t, t.TempDir(), url(t))
			m := metrics.New()
			ev, err := quota.NewEvictor(quota.Options{Store: s, Blobs: fs, Metrics: m, Remover: metaRemover(s, fs)})
			require.NoError(t, err)
			fn(t, &env{t: t, ctx: ctx, store: s, blobs: fs, ev: ev, m: m, clock: time.Unix(1_700_000_000, 0).UTC()})
		})
	}
}

// metaRemover is the Remover main builds, over s and fs.
func metaRemover(s meta.Store, fs *storage.FS) *quota.MetaRemover {
	return &quota.MetaRemover{Artifacts: s, Links: s, Store: s, Blobs: fs, Remover: lifecycle.NewRemover(s, nil)}
}

// proxyProject creates a proxy-cache project with a storage limit.
func (e *env) proxyProject(name string, limit int64) *meta.Project {
	rid, err := e.store.CreateRegistry(e.ctx, &meta.Registry{Name: name + "-up", Type: "docker-registry", URL: "http://127.0.0.1:1"})
	require.NoError(e.t, err)
	p := &meta.Project{Name: name, RegistryID: rid, StorageLimit: limit}
	_, err = e.store.CreateProject(e.ctx, p)
	require.NoError(e.t, err)
	return p
}

// blob stores n random bytes and links them into repo.
func (e *env) blob(p *meta.Project, repo string, n int) ocispec.Descriptor {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return e.linkBytes(p, repo, b)
}

func (e *env) linkBytes(p *meta.Project, repo string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	_, err := e.blobs.Put(e.ctx, d, bytes.NewReader(b))
	require.NoError(e.t, err)
	require.NoError(e.t, e.store.LinkBlob(e.ctx, p.ID, repo, d.String(), int64(len(b))))
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(b))}
}

// manifest records a manifest of origin in repo, pushed (arrived) at the env clock, which then advances.
func (e *env) manifest(p *meta.Project, repo, origin string, v any, subject string) ocispec.Descriptor {
	body, err := json.Marshal(v)
	require.NoError(e.t, err)
	d := digest.FromBytes(body)
	_, err = e.blobs.Put(e.ctx, d, bytes.NewReader(body))
	require.NoError(e.t, err)
	mt := ocispec.MediaTypeImageManifest
	if _, ok := v.(ocispec.Index); ok {
		mt = ocispec.MediaTypeImageIndex
	}
	e.clock = e.clock.Add(time.Second)
	require.NoError(e.t, e.store.PutArtifact(e.ctx, p.ID, repo, &meta.Artifact{Digest: d.String(), MediaType: mt,
		Size: int64(len(body)), Subject: subject, Origin: origin, PushTime: e.clock}))
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(body))}
}

// image records a pulled image manifest over a fresh config and layers of the given sizes.
func (e *env) image(p *meta.Project, repo string, layers ...int) ocispec.Descriptor {
	m := ocispec.Manifest{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageManifest, Config: e.blob(p, repo, 10)}
	for _, n := range layers {
		m.Layers = append(m.Layers, e.blob(p, repo, n))
	}
	return e.manifest(p, repo, meta.OriginPulled, m, "")
}

func (e *env) pull(repo string, d ocispec.Descriptor) {
	e.clock = e.clock.Add(time.Second)
	require.NoError(e.t, e.store.TouchPull(e.ctx, repo, d.Digest.String(), e.clock))
}

func (e *env) has(repo string, d ocispec.Descriptor) bool {
	_, err := e.store.GetArtifact(e.ctx, repo, d.Digest.String())
	if err == nil {
		return true
	}
	require.ErrorIs(e.t, err, meta.ErrNotFound)
	return false
}

func (e *env) onDisk(d digest.Digest) bool {
	_, err := e.blobs.Stat(e.ctx, d)
	return err == nil
}

func (e *env) usage(p *meta.Project) int64 {
	u, err := e.store.ProjectUsage(e.ctx, p.ID)
	require.NoError(e.t, err)
	return u
}

// TestMakeRoomLRU: the least recently pulled image goes first, and only as much as needed.
func TestMakeRoomLRU(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		p := e.proxyProject("cache", 10_000)
		a := e.image(p, "cache/a", 2000)
		b := e.image(p, "cache/b", 2000)
		c := e.image(p, "cache/c", 2000)
		e.pull("cache/a", a) // a is now the most recent; b never pulled but arrived after a
		e.pull("cache/c", c)
		used := e.usage(p)
		require.Greater(t, used, int64(6000))

		ok, err := e.ev.MakeRoom(e.ctx, p, 10_000-used+1, "")
		require.NoError(t, err)
		require.True(t, ok)
		require.False(t, e.has("cache/b", b), "least recently used")
		require.True(t, e.has("cache/a", a))
		require.True(t, e.has("cache/c", c))
		require.LessOrEqual(t, e.usage(p)+10_000-used+1, int64(10_000))
		require.Equal(t, 1.0, value(t, e.m.Evictions.WithLabelValues(quota.ReasonQuota)))
		require.Positive(t, value(t, e.m.EvictedBytes.WithLabelValues(quota.ReasonQuota)))

		// Blobs of the evicted image are unlinked and deleted.
		links, err := e.store.ListBlobLinks(e.ctx, "cache/b")
		require.NoError(t, err)
		require.Empty(t, links)
		require.False(t, e.onDisk(b.Digest))

		// Then a (pulled before c) goes, then c; asking for more than the limit fails at once.
		ok, err = e.ev.MakeRoom(e.ctx, p, 10_000-2600, "") // one image (about 2.4 KB) may stay
		require.NoError(t, err)
		require.True(t, ok)
		require.False(t, e.has("cache/a", a))
		require.True(t, e.has("cache/c", c))
		ok, err = e.ev.MakeRoom(e.ctx, p, 10_001, "")
		require.NoError(t, err)
		require.False(t, ok)
		require.True(t, e.has("cache/c", c), "nothing evicted for a request that can never fit")
	})
}

// TestMakeRoomKeepsPushedAndProtected: pushed content, a subject with a pushed referrer and the group of
// the digest being stored stay, even when that means the room cannot be made.
func TestMakeRoomKeepsPushedAndProtected(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		p := e.proxyProject("cache", 10_000)
		signed := e.image(p, "cache/a", 2000)
		sig := e.manifest(p, "cache/a", meta.OriginPushed, ocispec.Manifest{
			Versioned: specsV2(), MediaType: ocispec.MediaTypeImageManifest, Config: e.blob(p, "cache/a", 5),
			Subject: &signed}, signed.Digest.String())
		busy := e.image(p, "cache/b", 3000)
		old := e.image(p, "cache/c", 3000)
		e.pull("cache/b", busy)
		e.pull("cache/c", old)
		e.pull("cache/a", signed)
		require.NoError(t, e.store.TouchPull(e.ctx, "cache/b", busy.Digest.String(), e.clock.Add(time.Hour)))

		// Order by last use: c, then a (with its pushed signature), then b. b holds the blob being stored.
		layer := mustManifestLayer(t, e, busy)
		ok, err := e.ev.MakeRoom(e.ctx, p, 9_000, layer)
		require.NoError(t, err)
		require.False(t, ok)
		require.False(t, e.has("cache/c", old))
		require.True(t, e.has("cache/a", signed), "its pushed signature keeps it")
		require.True(t, e.has("cache/a", sig))
		require.True(t, e.has("cache/b", busy), "it holds the digest being stored")

		// Local projects are never evicted from.
		local := &meta.Project{Name: "local", StorageLimit: 1000}
		_, err = e.store.CreateProject(e.ctx, local)
		require.NoError(t, err)
		img := e.image(local, "local/x", 50)
		ok, err = e.ev.MakeRoom(e.ctx, local, 900, "")
		require.NoError(t, err)
		require.False(t, ok)
		require.True(t, e.has("local/x", img))
	})
}

// TestEvictGroups: an index goes with its children, a subject with its pulled referrers; a blob another
// repository links stays on disk, one the remaining images use stays linked.
func TestEvictGroups(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		p := e.proxyProject("cache", 100_000)
		shared := e.blob(p, "cache/multi", 1000)
		mk := func(layer ocispec.Descriptor) ocispec.Descriptor {
			m := ocispec.Manifest{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageManifest, Config: e.blob(p, "cache/multi", 10), Layers: []ocispec.Descriptor{layer}}
			return e.manifest(p, "cache/multi", meta.OriginPulled, m, "")
		}
		c1, c2 := mk(shared), mk(e.blob(p, "cache/multi", 1000))
		idx := e.manifest(p, "cache/multi", meta.OriginPulled, ocispec.Index{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{c1, c2}}, "")
		ref := e.manifest(p, "cache/multi", meta.OriginPulled, ocispec.Manifest{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageManifest,
			Config: e.blob(p, "cache/multi", 7), Subject: &c1}, c1.Digest.String())
		// Another image in the repository uses the shared layer; another repository links it too.
		other := mk(shared)
		e.linkBytes(p, "cache/elsewhere", []byte("unrelated"))
		require.NoError(t, e.store.LinkBlob(e.ctx, p.ID, "cache/elsewhere", shared.Digest.String(), shared.Size))
		e.pull("cache/multi", idx)
		e.pull("cache/multi", other) // the index group is now the least recently used

		ok, err := e.ev.MakeRoom(e.ctx, &meta.Project{ID: p.ID, Name: p.Name, RegistryID: p.RegistryID, StorageLimit: e.usage(p)}, 1, "")
		require.NoError(t, err)
		require.True(t, ok)
		for _, d := range []ocispec.Descriptor{idx, c1, c2, ref} {
			require.False(t, e.has("cache/multi", d), d.Digest)
			require.False(t, e.onDisk(d.Digest))
		}
		require.True(t, e.has("cache/multi", other))
		_, err = e.store.BlobLinked(e.ctx, "cache/multi", shared.Digest.String())
		require.NoError(t, err, "the remaining image uses it")
		require.True(t, e.onDisk(shared.Digest))
	})
}

// TestCheckDisk: above the high watermark, cached groups go, least recently used first, until the usage
// is at most the low one; pushed content stays; the gauges follow the filesystem.
func TestCheckDisk(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		p := e.proxyProject("cache", -1)
		q := e.proxyProject("cache2", -1)
		var imgs []ocispec.Descriptor
		for i := range 4 {
			proj, repo := p, fmt.Sprintf("cache/r%d", i)
			if i%2 == 1 {
				proj, repo = q, fmt.Sprintf("cache2/r%d", i)
			}
			imgs = append(imgs, e.image(proj, repo, 10_000))
		}
		pushed := e.image(p, "cache/mine", 10_000)
		pushedSig := e.manifest(p, "cache/mine", meta.OriginPushed, ocispec.Manifest{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageManifest,
			Config: e.blob(p, "cache/mine", 5), Subject: &pushed}, pushed.Digest.String())
		e.pull("cache2/r3", imgs[3])
		e.pull("cache/r0", imgs[0])
		e.pull("cache/mine", pushed)
		// LRU order now: r1, r2, r3, r0 (r3 and r0 were pulled last).

		// A 100 KB "filesystem" whose usage is the bytes in the storage dir (about 51 KB) plus 30 KB of
		// other files.
		disk := func() (uint64, uint64, error) {
			used := uint64(30_000) + dirBytes(t, e.blobs.Root())
			return 100_000, 100_000 - min(used, 100_000), nil
		}
		w := quota.Watermarks{High: 90, Low: 55, Disk: disk}
		n, err := e.ev.CheckDisk(e.ctx, w)
		require.NoError(t, err)
		require.Zero(t, n, "about 81% used")
		w.High = 80
		n, err = e.ev.CheckDisk(e.ctx, w)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.False(t, e.has("cache2/r1", imgs[1]))
		require.False(t, e.has("cache/r2", imgs[2]))
		require.False(t, e.has("cache2/r3", imgs[3]))
		require.True(t, e.has("cache/r0", imgs[0]))
		require.True(t, e.has("cache/mine", pushed))
		require.True(t, e.has("cache/mine", pushedSig))
		_, free, _ := disk()
		require.GreaterOrEqual(t, free, uint64(45_000))
		require.Equal(t, float64(100_000), value(t, e.m.StorageCapacityBytes))
		require.Equal(t, float64(100_000-free), value(t, e.m.StorageUsedBytes))
		require.Equal(t, 3.0, value(t, e.m.Evictions.WithLabelValues(quota.ReasonWatermark)))

		// Off: nothing evicted however full.
		n, err = e.ev.CheckDisk(e.ctx, quota.Watermarks{High: 0, Disk: func() (uint64, uint64, error) { return 100, 0, nil }})
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

// TestRunWatermarksClock: the loop runs a pass at start and then on each tick of its clock, and stops
// with its context.
func TestRunWatermarksClock(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		passes := make(chan struct{}, 10)
		w := quota.Watermarks{High: 90, Low: 80, Disk: func() (uint64, uint64, error) {
			passes <- struct{}{}
			return 100, 50, nil
		}}
		tick := make(chan time.Time)
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.ev.RunWatermarks(ctx, w, time.Hour, func(time.Duration) <-chan time.Time { return tick })
		}()
		<-passes
		tick <- time.Now()
		<-passes
		cancel()
		<-done
		require.Equal(t, 50.0, value(t, e.m.StorageUsedBytes))
	})
}

func specsV2() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

func mustManifestLayer(t *testing.T, e *env, d ocispec.Descriptor) string {
	body, err := quota.StorageManifests{Blobs: e.blobs}.ReadManifest(e.ctx, d.Digest.String())
	require.NoError(t, err)
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(body, &m))
	return m.Layers[0].Digest.String()
}

func dirBytes(t *testing.T, root string) uint64 {
	var n uint64
	require.NoError(t, filepath.Walk(filepath.Join(root, "blobs"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += uint64(fi.Size()) //nolint:gosec // file sizes are not negative
		}
		return err
	}))
	return n
}

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestMakeRoomKeepsIndexOfChildBeingStored: a platform manifest pulled after its index does not evict
// the index (the index lists it), even when that index is the least recently used group.
func TestMakeRoomKeepsIndexOfChildBeingStored(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		p := e.proxyProject("cache", 100_000)
		child := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("not held yet"), Size: 300}
		idx := e.manifest(p, "cache/multi", meta.OriginPulled, ocispec.Index{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{child}}, "")
		other := e.image(p, "cache/other", 1000)
		e.pull("cache/other", other)
		ok, err := e.ev.MakeRoom(e.ctx, &meta.Project{ID: p.ID, Name: p.Name, RegistryID: p.RegistryID, StorageLimit: e.usage(p)},
			child.Size, child.Digest.String())
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, e.has("cache/multi", idx), "least recently used, but it lists the child being stored")
		require.False(t, e.has("cache/other", other))
	})
}

// TestMakeRoomSkipsGroupItCannotRemove: when the blobs another manifest of the repository references
// cannot be read, that repository's group is left whole and the next group is evicted instead.
func TestMakeRoomSkipsGroupItCannotRemove(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		p := e.proxyProject("cache", 100_000)
		stuck := e.image(p, "cache/a", 1000)
		unreadable := e.image(p, "cache/a", 1000)
		next := e.image(p, "cache/b", 1000)
		e.pull("cache/a", unreadable)
		e.pull("cache/b", next)
		require.NoError(t, e.blobs.Delete(e.ctx, unreadable.Digest)) // its manifest bytes are gone
		ok, err := e.ev.MakeRoom(e.ctx, &meta.Project{ID: p.ID, Name: p.Name, RegistryID: p.RegistryID, StorageLimit: e.usage(p)}, 1, "")
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, e.has("cache/a", stuck), "not removed: what cache/a still needs is unknown")
		links, err := e.store.ListBlobLinks(e.ctx, "cache/a")
		require.NoError(t, err)
		require.Len(t, links, 4)
		require.False(t, e.has("cache/a", unreadable), "its own group goes (its blobs are unknown, so stay linked)")
	})
}

// orderDeleter deletes through the store and records the order of the deletes.
type orderDeleter struct {
	lifecycle.Deleter
	order *[]string
}

func (d orderDeleter) DeleteArtifact(ctx context.Context, repo, dgst string) error {
	*d.order = append(*d.order, dgst)
	return d.Deleter.DeleteArtifact(ctx, repo, dgst)
}

// TestEvictionByLifecycleRule: eviction removes a group by retention's rule (lifecycle.Plan through the
// lifecycle.Remover it is given): referrers before their subject, the index before its children.
func TestEvictionByLifecycleRule(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		var order []string
		mr := metaRemover(e.store, e.blobs)
		mr.Remover = lifecycle.NewRemover(orderDeleter{Deleter: e.store, order: &order}, nil)
		ev, err := quota.NewEvictor(quota.Options{Store: e.store, Blobs: e.blobs, Remover: mr})
		require.NoError(t, err)
		p := e.proxyProject("cache", 100_000)
		c1, c2 := e.image(p, "cache/multi", 100), e.image(p, "cache/multi", 100)
		idx := e.manifest(p, "cache/multi", meta.OriginPulled, ocispec.Index{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{c1, c2}}, "")
		ref := e.manifest(p, "cache/multi", meta.OriginPulled, ocispec.Manifest{Versioned: specsV2(), MediaType: ocispec.MediaTypeImageManifest,
			Config: e.blob(p, "cache/multi", 7), Subject: &c2}, c2.Digest.String())
		ok, err := ev.MakeRoom(e.ctx, &meta.Project{ID: p.ID, Name: p.Name, RegistryID: p.RegistryID, StorageLimit: e.usage(p)}, 1, "")
		require.NoError(t, err)
		require.True(t, ok)
		at := func(d ocispec.Descriptor) int { return slices.Index(order, d.Digest.String()) }
		require.Len(t, order, 4)
		require.Less(t, at(ref), at(c2), "the referrer before its subject")
		require.Less(t, at(idx), at(c1), "the index before its children")
		require.Less(t, at(idx), at(c2))
	})
}
