package registrytest

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/secret"
)

// NewBox returns a secret.Box with a fresh random key, for sealing the upstream credentials of a
// test's registry rows. It fails tb on any error.
func NewBox(tb testing.TB) *secret.Box {
	tb.Helper()
	key := make([]byte, secret.KeySize)
	_, err := rand.Read(key)
	require.NoError(tb, err)
	box, err := secret.NewBox(key)
	require.NoError(tb, err)
	return box
}
