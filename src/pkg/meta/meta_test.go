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
