package admin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
)

func TestNormalizeMetadata(t *testing.T) {
	cases := []struct {
		key, value, want string
		ok               bool
	}{
		{"public", "true", "true", true},
		{"public", "0", "false", true},
		{"public", "", "", false},
		{"proxy_referrer_api", "T", "true", true},
		{"proxy_referrer_api", "yes", "", false},
		{"allow_sparse_manifests", "1", "true", true},
		{"allow_sparse_manifests", "sometimes", "", false},
		{"proxy_referrer_cache_seconds", "0", "0", true},
		{"proxy_referrer_cache_seconds", "+15", "15", true},
		{"proxy_referrer_cache_seconds", "1.5", "", false},
		{"proxy_referrer_cache_seconds", "-1", "", false},
		{"proxy_referrer_cache_seconds", "", "", false},
		{"proxy_referrer_cache_seconds", "604800", "604800", true},
		{"proxy_referrer_cache_seconds", "604801", "", false},
		{"proxy_referrer_cache_seconds", "9300000000", "", false}, // overflowed time.Duration to "always MISS"
		{"proxy_referrer_cache_seconds", "99999999999999999999", "", false},
		{"proxy_tag_freshness_seconds", "60", "60", true},
		{"proxy_tag_freshness_seconds", "0", "0", true},
		{"proxy_tag_freshness_seconds", "604801", "", false},
		{"proxy_tag_freshness_seconds", "-1", "", false},
		{"proxy_tag_freshness_seconds", "1m", "", false},
		{"max_upstream_conn", "-1", "-1", true},
		{"max_upstream_conn", "2147483648", "", false},
		{"mirror_namespaces", " GHCR.io, 127.0.0.2:5000,ghcr.io,", "ghcr.io,127.0.0.2:5000", true},
		{"mirror_namespaces", "[::1]:5000", "[::1]:5000", true},
		{"mirror_namespaces", "", "", true},
		{"mirror_namespaces", "https://ghcr.io", "", false},
		{"mirror_namespaces", "ghcr.io/org", "", false},
		{"mirror_namespaces", "user@ghcr.io", "", false},
		{"mirror_namespaces", "ghcr io", "", false},
		{"anything", "", "", true},
		{"anything", "free text", "free text", true},
	}
	for _, tc := range cases {
		got, err := NormalizeMetadata(tc.key, tc.value)
		if !tc.ok {
			require.Error(t, err, "%s=%q", tc.key, tc.value)
			continue
		}
		require.NoError(t, err, "%s=%q", tc.key, tc.value)
		require.Equal(t, tc.want, got)
	}
}

func TestPingFailure(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&upstream.Error{Kind: upstream.Unauthorized, Status: 403}, "the registry refused the credentials (HTTP 403)"},
		{&upstream.Error{Kind: upstream.RateLimited, Status: 429}, "the registry is rate-limiting requests (HTTP 429)"},
		{&upstream.Error{Kind: upstream.Unsupported, Status: 404}, "the URL does not serve the registry API at /v2/ (HTTP 404)"},
		{&upstream.Error{Kind: upstream.Unavailable, Status: 502}, "the registry answered with a server error (HTTP 502)"},
		{&upstream.Error{Kind: upstream.Unavailable, Err: errors.New("dial tcp 192.168.1.1:5000")}, "the registry could not be reached"},
		{&upstream.Error{Kind: upstream.Invalid, Status: 418}, "the registry answered unexpectedly (HTTP 418)"},
		{&upstream.Error{Kind: upstream.Invalid, Err: errors.New("x509: certificate signed by unknown authority")},
			"the registry's answer or settings are not usable"},
		{fmt.Errorf("ping: %w", context.DeadlineExceeded), "the registry did not answer within 30s"},
		{errors.New("lookup internal.corp on 10.0.0.2:53: no such host"), "the registry could not be checked"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, pingFailure(tc.err))
	}
}
