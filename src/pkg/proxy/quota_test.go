package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/lifecycle"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/quota"
)

// pushSized pushes an image whose one layer has n random bytes.
func pushSized(t *testing.T, up *upServer, repo, tag string, n int) (ocispec.Manifest, []byte, map[string][]byte) {
	t.Helper()
	layer := randomBytes(n)
	ld := up.PushBlob(t, repo, layer)
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, ld.Digest))
	cd := up.PushBlob(t, repo, config)
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}}
	body, err := json.Marshal(m)
	require.NoError(t, err)
	up.PushManifest(t, repo, tag, ocispec.MediaTypeImageManifest, body)
	return m, body, map[string][]byte{ld.Digest.String(): layer, cd.Digest.String(): config}
}

// TestQuotaEvictsToMakeRoom: a proxy project with an 80 KB quota serves pulls of five 30 KB images in
// turn without failing any, evicts the least recently pulled ones to make room, never holds more than
// its quota, and serves a layer larger than the whole quota without keeping it.
func TestQuotaEvictsToMakeRoom(t *testing.T) {
	up := newUpstream(t, distribution)
	e := newEnv(t, up)
	m := metrics.New()
	ev, err := quota.NewEvictor(quota.Options{Store: e.store, Blobs: e.fs, Metrics: m,
		Remover: &quota.MetaRemover{Artifacts: e.store, Links: e.store, Store: e.store, Blobs: e.fs, Remover: lifecycle.NewRemover(e.store, nil)}})
	require.NoError(t, err)
	e.project.StorageLimit = 80_000
	require.NoError(t, e.store.UpdateProject(context.Background(), e.project))
	e.opts = proxy.Options{Quota: ev}
	e.serve(e.store)

	pull := func(repo, tag string, body []byte, blobs map[string][]byte) {
		t.Helper()
		requireOK(t, e.get(repo+"/manifests/"+tag), body)
		for d, b := range blobs {
			requireOK(t, e.get(repo+"/blobs/"+d), b)
		}
		e.settle()
		used, err := e.store.ProjectUsage(context.Background(), e.project.ID)
		require.NoError(t, err)
		require.LessOrEqual(t, used, e.project.StorageLimit)
	}
	var bodies [][]byte
	for i := range 5 {
		repo := fmt.Sprintf("app%d", i)
		_, body, blobs := pushSized(t, up, repo, "v1", 30_000)
		pull(repo, "v1", body, blobs)
		bodies = append(bodies, body)
	}
	// Room for two images: the three pulled first were evicted, in that order.
	for i, want := range []bool{false, false, false, true, true} {
		_, err := e.local.GetManifest(context.Background(), e.repo(fmt.Sprintf("app%d", i)), "v1")
		require.Equal(t, want, err == nil, "app%d held: %v", i, err)
	}
	require.Equal(t, 3.0, counter(t, m.Evictions.WithLabelValues(quota.ReasonQuota)))

	// Pulling an evicted one again pulls it through again.
	m0, err := e.store.ResolveTag(context.Background(), "cache/app0", "v1")
	require.Error(t, err, "%v", m0)
	requireOK(t, e.get("app0/manifests/v1"), bodies[0])

	// Larger than the whole quota: served, not kept, counted.
	big, body, blobs := pushSized(t, up, "big", "v1", 100_000)
	pull("big", "v1", body, blobs)
	e.requireNotStored(big.Layers[0].Digest)
	// Once: the pull downloaded the layer once, however fast the download outran the client's reader.
	require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/big/blobs/"+big.Layers[0].Digest.String()))
	require.Equal(t, 1.0, counter(t, m.QuotaPassthrough))
	// And again: a second pull streams it again.
	requireOK(t, e.get("big/blobs/"+big.Layers[0].Digest.String()), blobs[big.Layers[0].Digest.String()])
	require.Equal(t, http.StatusOK, e.do(http.MethodHead, "big/manifests/v1", "", nil).status)
}

func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
