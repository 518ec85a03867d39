package secret

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testBox(t *testing.T, fill byte) *Box {
	t.Helper()
	b, err := NewBox(bytes.Repeat([]byte{fill}, KeySize))
	require.NoError(t, err)
	return b
}

// seal seals plain with b and fails the test on an error.
func seal(t *testing.T, b *Box, plain string) string {
	t.Helper()
	sealed, err := b.Seal(plain)
	require.NoError(t, err)
	return sealed
}

func TestNewBoxKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		_, err := NewBox(make([]byte, n))
		require.Error(t, err, "key of %d bytes", n)
	}
	_, err := NewBox(make([]byte, KeySize))
	require.NoError(t, err)
}

func TestSealOpenRoundTrip(t *testing.T) {
	b := testBox(t, 1)
	for _, plain := range []string{"", "p", "s3cr3t-päss\x00word", strings.Repeat("x", 1<<16)} {
		sealed := seal(t, b, plain)
		require.True(t, strings.HasPrefix(sealed, "v1:"))
		require.True(t, IsSealed(sealed))
		if len(plain) > 8 {
			require.NotContains(t, sealed, plain)
		}
		got, err := b.Open(sealed)
		require.NoError(t, err)
		require.Equal(t, plain, got)
	}
}

func TestSealIsRandomised(t *testing.T) {
	b := testBox(t, 1)
	require.NotEqual(t, seal(t, b, "same"), seal(t, b, "same"))
}

func TestOpenRejects(t *testing.T) {
	b := testBox(t, 1)
	sealed := seal(t, b, "password")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	require.NoError(t, err)
	flip := func(i int) string {
		c := bytes.Clone(raw)
		c[i] ^= 0x01
		return "v1:" + base64.StdEncoding.EncodeToString(c)
	}
	other := seal(t, testBox(t, 2), "password")

	cases := []struct {
		name   string
		sealed string
		want   error
	}{
		{"plaintext", "password", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"unknown version", "v2:" + strings.TrimPrefix(sealed, "v1:"), ErrMalformed},
		{"bad base64", "v1:!!!", ErrMalformed},
		{"too short", "v1:" + base64.StdEncoding.EncodeToString(raw[:20]), ErrMalformed},
		{"nonce flipped", flip(0), ErrDecrypt},
		{"ciphertext flipped", flip(13), ErrDecrypt},
		{"tag flipped", flip(len(raw) - 1), ErrDecrypt},
		{"truncated", "v1:" + base64.StdEncoding.EncodeToString(raw[:len(raw)-1]), ErrDecrypt},
		{"extended", "v1:" + base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0)), ErrDecrypt},
		{"other key", other, ErrDecrypt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.Open(tc.sealed)
			require.ErrorIs(t, err, tc.want)
			require.Empty(t, got)
		})
	}
}
