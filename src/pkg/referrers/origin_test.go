package referrers_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// TestUpstreamDownPushedSubject: with the upstream down and nothing cached, the referrers of a subject
// that was pushed into the project (it never existed upstream) are the local ones, answered LOCAL even
// when there are none; a subject that came from the upstream keeps "never a false empty list" (503).
func TestUpstreamDownPushedSubject(t *testing.T) {
	eachCache(t, func(t *testing.T, ck cacheKind) {
		ctx := context.Background()
		up, img := newSubject(t, ggcrAPI)
		bare := up.srv.PushImage(t, repoPath, "v2")
		e := newEnv(t, up, ck)
		repo := e.repo(repoPath)
		for tag, im := range map[string]registrytest.Image{"v1": img, "v2": bare} {
			// As the pull-through path records what it fetched.
			require.NoError(t, e.local.RecordManifest(ctx, repo, tag, &content.Manifest{
				Digest: im.Manifest.Digest, MediaType: im.Manifest.MediaType, Body: im.Body}))
		}
		approval := newArtifact(t, img.Manifest, atBundle, false, nil)
		countersig := newArtifact(t, approval.desc, atNotation, true, nil)
		lonely := newArtifact(t, img.Manifest, atNotation, true, nil)
		for _, a := range []artifact{approval, countersig, lonely} {
			e.pushLocal(repo, a)
		}
		up.stop()

		require.Equal(t, descs(countersig), e.mustList(repo, approval.desc.Digest, "", content.CacheLocal),
			"a pushed subject with a local referrer")
		empty := e.mustList(repo, lonely.desc.Digest, "", content.CacheLocal)
		require.NotNil(t, empty)
		require.Empty(t, empty, "a pushed subject without referrers: an empty list, not 503")
		require.ElementsMatch(t, descs(approval, lonely), e.mustList(repo, img.Manifest.Digest, "", content.CacheLocal),
			"a pulled subject with local referrers (as before)")

		_, err := e.list(repo, bare.Manifest.Digest, "", "", 0)
		requireCode(t, err, errcode.ErrUpstreamUnavailable)
	})
}

// TestUpstreamDeletedReferrer: a referrer pulled through and then deleted upstream stops being listed
// once the upstream answer is refreshed (before that, the cached answer lists it, as it may); a
// referrer pushed here stays listed, and the manifest pulled through stays held (retention removes it).
func TestUpstreamDeletedReferrer(t *testing.T) {
	ctx := context.Background()
	up, img := newSubject(t, ggcrAPI)
	gone := up.pushNew(t, img.Manifest, atNotation, true, nil)
	kept := up.pushNew(t, img.Manifest, atBundle, false, nil)
	e := newEnv(t, up, cacheKinds[0])
	repo := e.repo(repoPath)
	subject := img.Manifest.Digest
	require.ElementsMatch(t, descs(gone, kept), e.mustList(repo, subject, "", content.CacheMiss))

	// A client pulls gone through; the organisation pushes a referrer of its own.
	require.NoError(t, e.local.RecordManifest(ctx, repo, "", &content.Manifest{Digest: gone.desc.Digest, MediaType: manifestMT, Body: gone.body}))
	mine := newArtifact(t, img.Manifest, atNotation, false, map[string]string{"org": "ours"})
	e.pushLocal(repo, mine)

	req, err := http.NewRequest(http.MethodDelete, up.URL+"/v2/"+repoPath+"/manifests/"+gone.desc.Digest.String(), nil)
	require.NoError(t, err)
	res, err := up.srv.PushClient().Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)

	require.ElementsMatch(t, descs(mine, gone, kept), e.mustList(repo, subject, "", content.CacheHit),
		"within freshness the cached upstream answer still names it")
	e.clock.Advance(freshness)
	require.ElementsMatch(t, descs(mine, kept), e.mustList(repo, subject, "", content.CacheMiss),
		"refreshed: the upstream no longer lists it, so neither does Berth")
	_, err = e.store.GetArtifact(ctx, repo.Name, gone.desc.Digest.String())
	require.NoError(t, err, "still held until retention removes it")
}
