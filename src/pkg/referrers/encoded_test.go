package referrers_test

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
)

// TestEncodedPage: a page that is the cached upstream list as it is carries its encoding, identical to
// encoding/json's; a page that differs from it (filtered, merged with a local referrer, cut by n) does not.
func TestEncodedPage(t *testing.T) {
	up, img := newSubject(t, ggcrAPI)
	up.pushNew(t, img.Manifest, atNotation, true, map[string]string{"org.example": "<&>"})
	up.pushNew(t, img.Manifest, atBundle, false, nil)
	e := newEnv(t, up, cacheKinds[0])
	repo := e.repo(repoPath)
	subject := img.Manifest.Digest
	marshal := func(m []ocispec.Descriptor) string {
		b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: m})
		require.NoError(t, err)
		return string(b)
	}

	for _, status := range []string{content.CacheMiss, content.CacheHit} {
		p, err := e.list(repo, subject, "", "", 0)
		require.NoError(t, err)
		require.Equal(t, status, p.Cache)
		require.Len(t, p.Manifests, 2)
		require.NotNil(t, p.Encoded, "%s: the whole cached list", status)
		require.Equal(t, marshal(p.Manifests), string(p.Encoded))
	}
	p, err := e.list(repo, subject, "artifactType="+atNotation, "", 0)
	require.NoError(t, err)
	require.Len(t, p.Manifests, 1)
	require.Nil(t, p.Encoded, "filtered")
	p, err = e.list(repo, subject, "", "", 1)
	require.NoError(t, err)
	require.Len(t, p.Manifests, 1)
	require.Nil(t, p.Encoded, "one page of two")

	e.pushLocal(repo, newArtifact(t, img.Manifest, atSBOM, false, nil))
	p, err = e.list(repo, subject, "", "", 0)
	require.NoError(t, err)
	require.Len(t, p.Manifests, 3)
	require.Nil(t, p.Encoded, "merged with a local referrer")
}
