package upstream

import (
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

func TestParseChallenges(t *testing.T) {
	cases := []struct {
		in   []string
		want challenge
		ok   bool
	}{
		{[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`},
			challenge{scheme: "bearer", realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/alpine:pull"}, true},
		{[]string{`Basic realm="Registry Realm"`}, challenge{scheme: "basic", realm: "Registry Realm"}, true},
		{[]string{`Basic realm="a, b", Bearer realm="https://t/token", service=svc`}, challenge{scheme: "bearer", realm: "https://t/token", service: "svc"}, true},
		{[]string{`Basic realm="x"`, `bearer REALM="https://t/\"q\""`}, challenge{scheme: "bearer", realm: `https://t/"q"`}, true},
		{[]string{`Negotiate`, `NTLM abc==`}, challenge{}, false},
		{nil, challenge{}, false},
		{[]string{`=,,="`}, challenge{}, false},
	}
	for _, tc := range cases {
		got, ok := parseChallenges(tc.in)
		require.Equal(t, tc.ok, ok, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

func TestFindNext(t *testing.T) {
	cases := []struct {
		in   []string
		want string
		ok   bool
	}{
		{[]string{`</v2/r/tags/list?last=b&n=2>; rel="next"`}, "/v2/r/tags/list?last=b&n=2", true},
		{[]string{`<a>; rel="prev", <b>; rel=next`}, "b", true},
		{[]string{`<a>; rel="prev"`, `<c>; title="x,y"; rel="first next"`}, "c", true},
		{[]string{`<a>; rel="prev"`}, "", false},
		{[]string{`garbage`}, "", false},
	}
	for _, tc := range cases {
		got, ok := findNext(tc.in)
		require.Equal(t, tc.ok, ok, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

func TestReferrersTags(t *testing.T) {
	d := digest.FromString("x")
	require.Equal(t, []string{"sha256-" + d.Encoded()}, referrersTags(d))
	d512 := digest.SHA512.FromString("x")
	require.Equal(t, []string{"sha512-" + d512.Encoded()[:64], "sha512-" + d512.Encoded()}, referrersTags(d512))
}
