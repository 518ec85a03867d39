package local

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
)

// With pull_time_tracking off, manifest reads gather nothing: no pending pull, nothing to flush.
func TestNoPullTracking(t *testing.T) {
	s := New(nil, nil, nil, Options{Pulls: NoPullTracking, PullFlushInterval: time.Hour})
	for _, k := range []content.PullKind{content.Pull, content.Check} {
		s.pulls.record("p/a", digest.FromString("1"), time.Unix(1700000000, 0), k)
	}
	s.pulls.mu.Lock()
	pending := len(s.pulls.pending)
	s.pulls.mu.Unlock()
	require.Zero(t, pending)
	require.NoError(t, s.FlushPulls(context.Background()))
	require.NoError(t, s.Close())
}
