package metrics_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/metrics"
)

func TestProjectLabel(t *testing.T) {
	cases := []struct {
		name   string
		opts   []metrics.Option
		public bool
		want   string
	}{
		{"public project", nil, true, "library"},
		{"private project hidden by default", nil, false, metrics.PrivateProject},
		{"private project named on opt-in", []metrics.Option{metrics.WithProjectNames()}, false, "library"},
		{"public project on opt-in", []metrics.Option{metrics.WithProjectNames()}, true, "library"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, metrics.New(tc.opts...).ProjectLabel("library", tc.public))
		})
	}
}
