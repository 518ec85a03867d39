package registry

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
)

// TestReferrersQuery: the one place that turns a referrers request's query into the typed query the
// domain (and so the cache key and the upstream) sees.
func TestReferrersQuery(t *testing.T) {
	tests := []struct {
		name, raw string
		want      content.ReferrersQuery
		code      string // the error's code, "" for none
	}{
		{name: "no parameters", raw: "", want: content.ReferrersQuery{}},
		{name: "one artifactType", raw: "artifactType=a%2Fb", want: content.ReferrersQuery{ArtifactType: "a/b"}},
		{name: "two artifactType values are refused", raw: "artifactType=a&artifactType=b", code: "BAD_REQUEST"},
		{name: "the same artifactType twice is refused too", raw: "artifactType=a&artifactType=a", code: "BAD_REQUEST"},
		{name: "n and last", raw: "n=5&last=x", want: content.ReferrersQuery{N: 5, Last: "x"}},
		{name: "n is passed on (the service caps it)", raw: "n=99", want: content.ReferrersQuery{N: 99}},
		{name: "n=0 asks for the default", raw: "n=0", want: content.ReferrersQuery{}},
		{name: "unknown parameters never reach the domain", raw: "foo=1&ns=x&artifactType=a", want: content.ReferrersQuery{ArtifactType: "a"}},
		{name: "n twice", raw: "n=1&n=2", code: "PAGINATION_NUMBER_INVALID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.raw)
			require.NoError(t, err)
			got, err := referrersQuery(q)
			if tc.code != "" {
				var e *errcode.Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, tc.code, e.Code.Value)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
