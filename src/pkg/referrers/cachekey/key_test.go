package cachekey_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
)

const subject = digest.Digest("sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	require.NoError(t, err)
	return q
}

func TestReferrersKey(t *testing.T) {
	key, err := cachekey.Referrers(3, 7, "proxy/library/nginx", subject, mustQuery(t, "artifactType=application/vnd.cncf.notary.signature&n=10"))
	require.NoError(t, err)
	require.Equal(t, "v1:referrers:3:7:proxy/library/nginx:"+subject.String()+":artifactType=application%2Fvnd.cncf.notary.signature", key)

	key, err = cachekey.Referrers(3, 7, "proxy/nginx", subject, nil)
	require.NoError(t, err)
	require.Equal(t, "v1:referrers:3:7:proxy/nginx:"+subject.String()+":", key)
}

func TestNormalizeQuery(t *testing.T) {
	long := "artifactType=" + strings.Repeat("x", cachekey.MaxQueryLen)
	tests := []struct {
		name, a, b string // a and b must normalise alike
		want       string
	}{
		{"empty", "", "n=5&last=abc", ""},
		{"paging dropped", "artifactType=a", "n=10&artifactType=a&last=sha256:00", "artifactType=a"},
		{"encoded", "artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson", "artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson",
			"artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson"},
		// In a query a bare '+' is a space (form encoding), so it names another type than "%2B".
		{"bare plus is a space", "artifactType=a+json", "artifactType=a%20json", "artifactType=a+json"},
		{"values sorted and deduplicated", "artifactType=b&artifactType=a", "artifactType=a&artifactType=b&artifactType=a", "artifactType=a&artifactType=b"},
		{"names sorted", "zeta=1&artifactType=a", "artifactType=a&zeta=1", "artifactType=a&zeta=1"},
		{"empty value kept", "artifactType", "artifactType=", "artifactType="},
		{"empty name dropped", "=x&artifactType=a", "artifactType=a", "artifactType=a"},
		{"escaping keeps fields apart", "artifactType=a:b&c", "artifactType=a%3Ab&c=", "artifactType=a%3Ab&c="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := cachekey.NormalizeQuery(mustQuery(t, tc.a)), cachekey.NormalizeQuery(mustQuery(t, tc.b))
			require.Equal(t, tc.want, a)
			require.Equal(t, a, b)
			require.NotContains(t, a, ":", "the query part never contains the field separator")
		})
	}

	t.Run("long query hashed", func(t *testing.T) {
		got := cachekey.NormalizeQuery(mustQuery(t, long))
		require.Regexp(t, `^sha256-[0-9a-f]{64}$`, got)
		require.Equal(t, got, cachekey.NormalizeQuery(mustQuery(t, "n=1&"+long)), "normalised before hashing")
		require.NotEqual(t, got, cachekey.NormalizeQuery(mustQuery(t, long+"y")))
	})
	t.Run("does not modify its argument", func(t *testing.T) {
		q := mustQuery(t, "artifactType=b&artifactType=a&n=3")
		cachekey.NormalizeQuery(q)
		require.Equal(t, []string{"b", "a"}, q["artifactType"])
		require.Equal(t, []string{"3"}, q["n"])
	})
}

func TestReferrersKeyBounded(t *testing.T) {
	hostile := url.Values{}
	for i := range 500 {
		hostile.Add(strings.Repeat("k", i), strings.Repeat("v", 1000))
	}
	key, err := cachekey.Referrers(1<<62, 1<<62, strings.Repeat("a", cachekey.MaxRepositoryLen),
		digest.Digest("sha512:"+strings.Repeat("ab", 64)), hostile)
	require.NoError(t, err)
	require.LessOrEqual(t, len(key), 600, "keys stay bounded whatever the client sends")
}

func TestReferrersKeyInvalid(t *testing.T) {
	tests := []struct {
		name       string
		project    int64
		registry   int64
		repository string
		subject    digest.Digest
	}{
		{"no project", 0, 1, "p/r", subject},
		{"no registry", 1, 0, "p/r", subject},
		{"negative", -1, 1, "p/r", subject},
		{"empty repository", 1, 1, "", subject},
		{"colon in repository", 1, 1, "p/r:tag", subject},
		{"upper case", 1, 1, "p/R", subject},
		{"space", 1, 1, "p/ r", subject},
		{"too long", 1, 1, strings.Repeat("a", cachekey.MaxRepositoryLen+1), subject},
		{"bad digest", 1, 1, "p/r", "sha256:xyz"},
		{"upper-case hex", 1, 1, "p/r", digest.Digest(strings.ToUpper(subject.String()))},
		{"empty digest", 1, 1, "p/r", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cachekey.Referrers(tc.project, tc.registry, tc.repository, tc.subject, nil)
			require.ErrorIs(t, err, cachekey.ErrInvalidKey)
		})
	}
}
