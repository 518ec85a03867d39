package content_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
)

// TestPageRule: the single page rule of referrers lists.
func TestPageRule(t *testing.T) {
	tests := []struct {
		name      string
		rule      content.PageRule
		n, expect int
	}{
		{"zero rule, no n: the default", content.PageRule{}, 0, content.DefaultReferrersPageSize},
		{"zero rule, large n: the default maximum", content.PageRule{}, 1 << 30, content.DefaultMaxReferrersPageSize},
		{"defaults from zero values", content.NewPageRule(0, 0), -1, content.DefaultReferrersPageSize},
		{"configured default", content.NewPageRule(2, 10), 0, 2},
		{"n within the maximum", content.NewPageRule(2, 10), 7, 7},
		{"n at the maximum", content.NewPageRule(2, 10), 10, 10},
		{"n above the maximum", content.NewPageRule(2, 10), 11, 10},
		{"a default above the maximum is the maximum", content.NewPageRule(50, 3), 0, 3},
		{"only a maximum below the default", content.NewPageRule(0, 3), 0, 3},
		{"only a default above the default maximum", content.NewPageRule(20000, 0), 0, content.DefaultMaxReferrersPageSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.expect, tc.rule.Size(tc.n))
		})
	}
}
