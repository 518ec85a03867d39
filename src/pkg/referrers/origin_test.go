package referrers_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/registry/registrytest"
)

// TestUpstreamDownPushedSubject: with the upstream down and nothing cached, the referrers of a subject
// that was pushed into the project (it never existed upstream) are the local ones, answered LOCAL even
// when there are none; a subject that came from the upstream keeps "never a false empty list" (503).
func TestUpstreamDownPushedSubject(t *testing.T) {
	for _, ck := range cacheKinds {
		t.Run(ck.name, func(t *testing.T) {
			ctx := context.Background()
			up := newRegistry(t, ggcrAPI)
			img := up.srv.PushImage(t, repoPath, "v1")
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
}
