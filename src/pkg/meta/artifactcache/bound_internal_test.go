package artifactcache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// everyTag is a hand-written fake whose every tag resolves to an artifact of that name.
type everyTag struct{ meta.ArtifactStore }

func (everyTag) ResolveTag(_ context.Context, repo, tag string) (*meta.Artifact, error) {
	return &meta.Artifact{Repository: repo, Digest: "sha256:" + tag}, nil
}

func TestBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := New(everyTag{}, time.Minute, WithMaxEntries(8), WithClock(func() time.Time { return now }))
	for i := range 100 {
		a, err := s.ResolveTag(context.Background(), "p/r", fmt.Sprint(i))
		require.NoError(t, err)
		require.Equal(t, "sha256:"+fmt.Sprint(i), a.Digest)
		require.LessOrEqual(t, s.cache.Map().Len(), 8)
	}
	// The latest read is cached: a full map makes room rather than refusing new entries.
	_, ok := s.cache.Map().Get(key{repo: "p/r", ref: "99", tag: true})
	require.True(t, ok)
}
