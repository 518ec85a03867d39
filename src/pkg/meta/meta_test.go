package meta_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

func TestProjectSeconds(t *testing.T) {
	week := time.Duration(meta.MaxMetadataSeconds) * time.Second
	cases := []struct {
		value string // "-" for absent
		want  time.Duration
		ok    bool
	}{
		{"-", 0, false},
		{"0", 0, true},
		{"60", time.Minute, true},
		{"604800", week, true},
		{"604801", week, true},
		{"9300000000", week, true}, // time.Duration(9300000000)*time.Second wraps negative
		{"99999999999999999999999", week, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"", 0, false},
		{"1m", 0, false},
	}
	for _, tc := range cases {
		p := &meta.Project{Metadata: map[string]string{}}
		if tc.value != "-" {
			p.Metadata["k"] = tc.value
		}
		got, ok := p.Seconds("k")
		require.Equal(t, tc.ok, ok, "%q", tc.value)
		require.Equal(t, tc.want, got, "%q", tc.value)
		require.GreaterOrEqual(t, got, time.Duration(0))
	}
}

func TestParseSeconds(t *testing.T) {
	cases := []struct {
		key, value string
		want       int64
		ok         bool
	}{
		{meta.MetaProxyReferrerCacheSecond, "0", 0, true},
		{meta.MetaProxyReferrerCacheSecond, "604800", 604800, true},
		{meta.MetaProxyReferrerCacheSecond, "604801", 0, false},
		{meta.MetaProxyReferrerCacheSecond, "-1", 0, false},
		{meta.MetaProxyReferrerCacheSecond, "1.5", 0, false},
		{meta.MetaProxyTagFreshnessSecond, "60", 60, true},
		{meta.MetaProxyTagFreshnessSecond, "99999999999999999999", 0, false},
	}
	for _, tc := range cases {
		got, err := meta.ParseSeconds(tc.key, tc.value)
		if !tc.ok {
			require.ErrorContains(t, err, tc.key, "%s=%q", tc.key, tc.value)
			continue
		}
		require.NoError(t, err, "%s=%q", tc.key, tc.value)
		require.Equal(t, tc.want, got)
	}
	require.True(t, meta.IsSecondsKey(meta.MetaProxyTagFreshnessSecond))
	require.False(t, meta.IsSecondsKey(meta.MetaPublic))
}

// TestCloneSharesNothing: a clone's maps are its own, and a nil map stays nil.
func TestCloneSharesNothing(t *testing.T) {
	p := &meta.Project{ID: 1, Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}}
	cp := p.Clone()
	require.Equal(t, p, cp)
	cp.Metadata[meta.MetaPublic] = "false"
	cp.Name = "changed"
	require.Equal(t, "true", p.Metadata[meta.MetaPublic])
	require.Equal(t, "library", p.Name)
	require.Nil(t, (&meta.Project{}).Clone().Metadata)

	a := &meta.Artifact{Digest: "sha256:a", Annotations: map[string]string{"k": "v"}}
	ca := a.Clone()
	require.Equal(t, a, ca)
	ca.Annotations["k"] = "changed"
	require.Equal(t, "v", a.Annotations["k"])
	require.Nil(t, (&meta.Artifact{}).Clone().Annotations)
}
