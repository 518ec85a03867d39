package proxy_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPullThroughRecordsPull: the pull that fills the cache sets the artifact's pull time and counts
// toward the repository's pull count, like the pulls served locally after it; a HEAD sets the time
// without counting, and the proxy's own comparison of a held tag with the upstream counts nothing.
func TestPullThroughRecordsPull(t *testing.T) {
	e, _, img := newImageEnv(t, ggcr, "lib/app", "v1")
	ctx := t.Context()
	repo := e.repo("lib/app")

	requireOK(t, e.get("lib/app/manifests/v1"), img.Body) // the fill
	require.NoError(t, e.local.FlushPulls(ctx))
	a, err := e.store.GetArtifact(ctx, repo.Name, img.Manifest.Digest.String())
	require.NoError(t, err)
	require.False(t, a.PullTime.IsZero(), "a pulled-through manifest has a pull time from its first pull")
	r, err := e.store.GetRepository(ctx, repo.Name)
	require.NoError(t, err)
	require.EqualValues(t, 1, r.PullCount)

	requireOK(t, e.get("lib/app/manifests/v1"), img.Body)                            // tag checked upstream, held
	requireOK(t, e.get("lib/app/manifests/"+img.Manifest.Digest.String()), img.Body) // local
	require.Equal(t, http.StatusOK, e.do(http.MethodHead, "lib/app/manifests/v1", "", nil).status)
	require.NoError(t, e.local.FlushPulls(ctx))
	r, err = e.store.GetRepository(ctx, repo.Name)
	require.NoError(t, err)
	require.EqualValues(t, 3, r.PullCount, "two GETs more; the HEAD and the proxy's own tag check are not pulls")
}
