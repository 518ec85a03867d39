package reference

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// The grammars as the specifications write them; the scanners must agree with these (see the fuzz
// targets). Tests only: the scanners exist so that requests do not run regexps.
var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
	ociDigRE = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

var (
	hex64  = strings.Repeat("0123456789abcdef", 4)
	hex128 = strings.Repeat("0123456789abcdef", 8)
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr error // nil, ErrNameInvalid or ErrNameNoProject
	}{
		{"library/busybox", nil},
		{"proj/a/b/c", nil},
		{"my-proj/my.repo", nil},
		{"p/a__b", nil},
		{"p/a_b", nil},
		{"p/a---b", nil},
		{"p/a.b.c", nil},
		{"0/1", nil},
		{"p/" + strings.Repeat("a", 253), nil},
		{"p/" + strings.Repeat("a", 254), ErrNameInvalid},
		{"busybox", ErrNameNoProject},
		{"a", ErrNameNoProject},
		{"", ErrNameInvalid},
		{"Library/busybox", ErrNameInvalid},
		{"p/a___b", ErrNameInvalid},
		{"p/a..b", ErrNameInvalid},
		{"p/a._b", ErrNameInvalid},
		{"p/a-", ErrNameInvalid},
		{"p/-a", ErrNameInvalid},
		{"p/.a", ErrNameInvalid},
		{"p/_a", ErrNameInvalid},
		{"p//a", ErrNameInvalid},
		{"/p/a", ErrNameInvalid},
		{"p/a/", ErrNameInvalid},
		{"p/../a", ErrNameInvalid},
		{"p/a b", ErrNameInvalid},
		{"p/a:b", ErrNameInvalid},
		{"p/a\x00", ErrNameInvalid},
		{"p/é", ErrNameInvalid},
		{"_catalog", ErrNameInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.name)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorIs(t, err, ErrNameInvalid, "every name error is a NAME_INVALID")
			if !errors.Is(tt.wantErr, ErrNameNoProject) {
				require.NotErrorIs(t, err, ErrNameNoProject)
			}
		})
	}
}

func TestValidateTag(t *testing.T) {
	tests := []struct {
		tag string
		ok  bool
	}{
		{"latest", true},
		{"v1.2.3", true},
		{"_x", true},
		{"A-b_c.D", true},
		{"sha256-" + hex64 + ".sig", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{".x", false},
		{"-x", false},
		{"a:b", false},
		{"a/b", false},
		{"a b", false},
		{"ü", false},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			err := ValidateTag(tt.tag)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrTagInvalid)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error // nil, ErrDigestInvalid or ErrDigestUnsupported
	}{
		{"sha256:" + hex64, nil},
		{"sha512:" + hex128, nil},
		{"sha256:" + hex64[:63], ErrDigestInvalid},
		{"sha256:" + hex64 + "0", ErrDigestInvalid},
		{"sha256:" + strings.ToUpper(hex64), ErrDigestInvalid},
		{"sha512:" + hex64, ErrDigestInvalid},
		{"SHA256:" + hex64, ErrDigestInvalid},
		{"sha256:" + hex64[:63] + "g", ErrDigestInvalid},
		{"sha384:" + strings.Repeat("a", 96), ErrDigestUnsupported},
		{"blake3:" + hex64, ErrDigestUnsupported},
		{"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", ErrDigestUnsupported},
		{"", ErrDigestInvalid},
		{":", ErrDigestInvalid},
		{"sha256", ErrDigestInvalid},
		{"sha256:", ErrDigestInvalid},
		{":" + hex64, ErrDigestInvalid},
		{"sha256:../../etc", ErrDigestInvalid},
		{"+sha:abc", ErrDigestInvalid},
		{"sha+:abc", ErrDigestInvalid},
		{"sha++x:abc", ErrDigestInvalid},
		{"sha:a/b", ErrDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDigest(tt.in)
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, digest.Digest(tt.in), d)
				require.NoError(t, d.Validate())
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorIs(t, err, ErrDigestInvalid)
			if !errors.Is(tt.wantErr, ErrDigestUnsupported) {
				require.NotErrorIs(t, err, ErrDigestUnsupported)
			}
			require.Empty(t, d)
		})
	}
}

func TestErrorTextIsBounded(t *testing.T) {
	long := strings.Repeat("A", 1<<20)
	err := ValidateName(long)
	require.Error(t, err)
	require.Less(t, len(err.Error()), 200)
}
