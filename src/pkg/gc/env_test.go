package gc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// env is a real store (SQLite or PostgreSQL), a real blob store, the local content service pinning
// through gc.Pins, and a collector with a one-hour grace period; pins and collector share a test clock.
type env struct {
	t     *testing.T
	store meta.Store
	blobs *storage.FS
	svc   *local.Service
	clock *clocktest.Clock
	coll  *gc.Collector
	proj  *meta.Project
}

// backends runs fn on SQLite and on PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, newDB func(testing.TB) string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqltest.SQLite) })
	t.Run("postgres", func(t *testing.T) { fn(t, sqltest.Postgres) })
}

// eachEnv runs fn as a subtest with a new env (no store wrapper) on each database backend.
func eachEnv(t *testing.T, fn func(t *testing.T, e *env)) {
	backends(t, func(t *testing.T, newDB func(testing.TB) string) { fn(t, newEnv(t, newDB(t), nil)) })
}

func newEnv(t *testing.T, dbURL string, wrap func(meta.GCStore) meta.GCStore) *env {
	t.Helper()
	blobs, store := contenttest.StoresOn(t, t.TempDir(), dbURL)
	c := clocktest.New(time.Now())
	var gs meta.GCStore = store
	if wrap != nil {
		gs = wrap(store)
	}
	e := &env{t: t, store: store, blobs: blobs, clock: c}
	e.svc = local.New(blobs, store, store, local.Options{Pins: gc.NewPins(store, blobs, 0, c.Now), ManifestCacheBytes: -1})
	t.Cleanup(func() { _ = e.svc.Close() })
	e.coll = gc.NewCollector(gs, blobs, time.Hour, c.Now)
	e.proj = &meta.Project{Name: "library", Metadata: map[string]string{}}
	contenttest.CreateProjects(t, store, e.proj)
	return e
}

func (e *env) repo(name string) content.Repo {
	return content.Repo{Project: e.proj, Name: "library/" + name, Path: name}
}

// upload pushes data as a blob of repo through an upload session.
func (e *env) upload(repo string, data []byte) digest.Digest {
	e.t.Helper()
	ctx := context.Background()
	r := e.repo(repo)
	id, err := e.svc.StartUpload(ctx, r)
	require.NoError(e.t, err)
	_, err = e.svc.AppendUpload(ctx, r, id, 0, bytes.NewReader(data))
	require.NoError(e.t, err)
	d := digest.FromBytes(data)
	_, err = e.svc.CommitUpload(ctx, r, id, d)
	require.NoError(e.t, err)
	return d
}

type desc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// image uploads a config and layers to repo and pushes an image manifest naming them under ref.
func (e *env) image(repo, ref string, layers ...[]byte) (digest.Digest, []digest.Digest) {
	e.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","ref":"` + repo + ref + `"}`)
	m := map[string]any{"schemaVersion": 2, "mediaType": local.MediaTypeOCIManifest,
		"config": desc{"application/vnd.oci.image.config.v1+json", e.upload(repo, cfg).String(), int64(len(cfg))}}
	blobs := []digest.Digest{digest.FromBytes(cfg)}
	var ls []desc
	for _, l := range layers {
		d := e.upload(repo, l)
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar", d.String(), int64(len(l))})
		blobs = append(blobs, d)
	}
	m["layers"] = ls
	return e.put(repo, ref, local.MediaTypeOCIManifest, m), blobs
}

// put pushes a manifest document.
func (e *env) put(repo, ref, mt string, doc any) digest.Digest {
	e.t.Helper()
	body, err := json.Marshal(doc)
	require.NoError(e.t, err)
	if ref == "" {
		ref = digest.FromBytes(body).String()
	}
	res, err := e.svc.PutManifest(context.Background(), e.repo(repo), ref, mt, body)
	require.NoError(e.t, err)
	return res.Digest
}

// collect runs one collection with the clock moved past the grace period of everything there.
func (e *env) collect(p gc.Params) gc.Result {
	e.t.Helper()
	e.clock.Set(time.Now().Add(2 * time.Hour))
	log := gc.NewLog(nil)
	res, err := e.coll.Collect(context.Background(), p, log)
	require.NoError(e.t, err, log.String())
	return res
}

// stored reports whether the blob's bytes are in storage.
func (e *env) stored(d digest.Digest) bool {
	_, err := e.blobs.Stat(context.Background(), d)
	return err == nil
}

// readable checks that repo serves d with the right content.
func (e *env) readable(repo string, d digest.Digest) {
	e.t.Helper()
	b, err := e.svc.OpenBlob(context.Background(), e.repo(repo), d)
	require.NoError(e.t, err, "%s in %s", d, repo)
	defer func() { _ = b.Close() }()
	data, err := io.ReadAll(b)
	require.NoError(e.t, err)
	require.Equal(e.t, d, digest.FromBytes(data))
}

// hooked wraps a GCStore to run a function once, just before the first CondemnBlobs or FinishCondemnedAll.
type hooked struct {
	meta.GCStore
	beforeCondemn, beforeFinish func(digest string)
	once1, once2                sync.Once
}

func (h *hooked) CondemnBlobs(ctx context.Context, cands []meta.GCCandidate, cutoff time.Time) ([]meta.GCCondemned, error) {
	if h.beforeCondemn != nil && len(cands) > 0 {
		h.once1.Do(func() { h.beforeCondemn(cands[0].Digest) })
	}
	return h.GCStore.CondemnBlobs(ctx, cands, cutoff)
}

func (h *hooked) FinishCondemnedAll(ctx context.Context, digests []string, remove func(string) error) ([]bool, error) {
	if h.beforeFinish != nil && len(digests) > 0 {
		h.once2.Do(func() { h.beforeFinish(digests[0]) })
	}
	return h.GCStore.FinishCondemnedAll(ctx, digests, remove)
}
