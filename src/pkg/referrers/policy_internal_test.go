package referrers

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// TestPolicy: the cache policy on its own, without a cache or an upstream.
func TestPolicy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPolicy(Options{Freshness: 30 * time.Second, CacheTTL: time.Hour, LockTTL: time.Second, Now: func() time.Time { return now }})
	plain := &meta.Project{}
	short := &meta.Project{Metadata: map[string]string{meta.MetaProxyReferrerCacheSecond: "5"}}
	zero := &meta.Project{Metadata: map[string]string{meta.MetaProxyReferrerCacheSecond: "0"}}
	at := func(age time.Duration) *entry { return &entry{storedAt: now.Add(-age)} }

	fresh := []struct {
		name string
		proj *meta.Project
		age  time.Duration
		want bool
	}{
		{"default window, young", plain, 29 * time.Second, true},
		{"default window, at its end", plain, 30 * time.Second, false},
		{"project window of 5s, 4s old", short, 4 * time.Second, true},
		{"project window of 5s, 6s old", short, 6 * time.Second, false},
		{"project window 0: never fresh", zero, 0, false},
	}
	for _, tc := range fresh {
		t.Run("fresh/"+tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, p.fresh(tc.proj, at(tc.age)))
		})
	}

	unavailable := &upstream.Error{Kind: upstream.Unavailable, Err: errors.New("down")}
	stores := []struct {
		name string
		err  error
		want bool
	}{
		{"an answer", nil, true},
		{"not found: an empty list", &upstream.Error{Kind: upstream.NotFound}, true},
		{"unavailable", unavailable, false},
		{"rate limited", &upstream.Error{Kind: upstream.RateLimited}, false},
		{"invalid", &upstream.Error{Kind: upstream.Invalid}, false},
		{"untyped", errors.New("boom"), false},
	}
	for _, tc := range stores {
		t.Run("stores/"+tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, p.stores(tc.err))
		})
	}

	t.Run("failed with a kept entry: stale", func(t *testing.T) {
		old := at(time.Hour)
		f := p.failed(old, unavailable)
		require.Same(t, old, f.entry)
		require.Equal(t, content.CacheStale, f.status)
		require.ErrorIs(t, f.err, unavailable)
	})
	t.Run("failed with nothing kept: the failure", func(t *testing.T) {
		f := p.failed(nil, unavailable)
		require.Nil(t, f.entry)
		require.ErrorIs(t, f.err, unavailable)
	})
}
