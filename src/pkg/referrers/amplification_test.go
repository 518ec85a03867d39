package referrers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// An artifactType longer than a media type can be (a 500 KB one, in the issue) is refused with 400
// before anything is read, cached or asked upstream, in projects with and without the toggle; one of
// exactly meta.MaxArtifactTypeLength bytes is served.
func TestOversizeArtifactTypeRefused(t *testing.T) {
	up := newRegistry(t, ggcrAPI)
	img := up.srv.PushImage(t, repoPath, "v1")
	e := newEnv(t, up, cacheKinds[0])
	off := e.newProject("plain", map[string]string{meta.MetaProxyReferrerAPI: "false"})
	longest := "application/" + strings.Repeat("x", meta.MaxArtifactTypeLength-len("application/"))
	for _, p := range []*meta.Project{e.project, off} {
		t.Run(p.Name, func(t *testing.T) {
			before := up.requests()
			for _, size := range []int{meta.MaxArtifactTypeLength + 1, 500 << 10} {
				at := "application/" + strings.Repeat("x", size-len("application/"))
				_, err := e.list(e.repo(repoPath, p), img.Manifest.Digest, "artifactType="+url.QueryEscape(at), "", 0)
				requireCode(t, err, errcode.ErrBadRequest)
				require.Equal(t, http.StatusBadRequest, errcode.As(err).Code.Status)
				require.Contains(t, errcode.As(err).Error(), "artifactType")
			}
			require.Equal(t, before, up.requests(), "nothing is asked upstream for a refused request")
			page, err := e.list(e.repo(repoPath, p), img.Manifest.Digest, "artifactType="+url.QueryEscape(longest), "", 0)
			require.NoError(t, err)
			require.Equal(t, []string{"artifactType"}, page.FiltersApplied)
		})
	}
}
