// Package cachekey names and encodes the referrers proxy's cache entries: the cache key of one upstream
// referrers answer (Referrers, NormalizeQuery) and the versioned, checksummed envelope stored under it
// (Entry, Encode, Decode). It does no I/O; package cache stores the bytes.
package cachekey

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/reference"
)

// KeyVersion is the first field of every key. Change it whenever the key layout or the query
// normalisation changes, so that old entries are simply never read again (they expire by TTL).
const KeyVersion = "v1"

// MaxQueryLen is the longest normalised query kept verbatim in a key; a longer one is replaced by
// "sha256-<hex of its SHA-256>", so keys stay bounded whatever the client sends.
const MaxQueryLen = 128

// MaxRepositoryLen is the longest repository name accepted in a key.
const MaxRepositoryLen = 255

// ErrInvalidKey reports an argument that cannot be part of a key.
var ErrInvalidKey = errors.New("cachekey: invalid key part")

// ignoredParams are query parameters that do not change the answer cached: Berth paginates the full list
// itself, so the client's page size and position are not part of the key.
var ignoredParams = []string{"n", "last"}

// Referrers returns the cache key of the upstream referrers answer for subject in repository, for the
// proxy project projectID of upstream registry registryID, asked with query:
//
//	v1:referrers:<projectID>:<registryID>:<repository>:<subject>:<NormalizeQuery(query)>
//
// repository is the name as it is cached (lower-case letters, digits, '.', '_', '-' and '/', at most
// MaxRepositoryLen); subject must be a valid digest. Each field is unambiguous: only the digest contains
// a ':' (exactly one) and the query part is URL-encoded. Errors wrap ErrInvalidKey.
func Referrers(projectID, registryID int64, repository string, subject digest.Digest, query url.Values) (string, error) {
	if projectID <= 0 || registryID <= 0 {
		return "", fmt.Errorf("%w: project %d, registry %d", ErrInvalidKey, projectID, registryID)
	}
	if err := validRepository(repository); err != nil {
		return "", err
	}
	// The common sha256/sha512 digests are checked without go-digest's regular expression.
	if _, err := reference.ParseDigest(string(subject)); err != nil {
		if err := subject.Validate(); err != nil {
			return "", fmt.Errorf("%w: subject: %w", ErrInvalidKey, err)
		}
	}
	var b strings.Builder
	b.Grow(len(KeyVersion) + 64 + len(repository) + len(subject))
	b.WriteString(KeyVersion)
	b.WriteString(":referrers:")
	b.WriteString(strconv.FormatInt(projectID, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(registryID, 10))
	b.WriteByte(':')
	b.WriteString(repository)
	b.WriteByte(':')
	b.WriteString(subject.String())
	b.WriteByte(':')
	b.WriteString(NormalizeQuery(query))
	return b.String(), nil
}

func validRepository(repository string) error {
	if repository == "" || len(repository) > MaxRepositoryLen {
		return fmt.Errorf("%w: repository length %d", ErrInvalidKey, len(repository))
	}
	for _, r := range repository {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '/') {
			return fmt.Errorf("%w: repository %q", ErrInvalidKey, repository)
		}
	}
	return nil
}

// NormalizeQuery returns the canonical form of a referrers query for a cache key: the parameters n and
// last are dropped (Berth pages through the full list itself), as are parameters with an empty name;
// every other parameter (artifactType in particular) is kept with its values sorted and de-duplicated;
// names are sorted and names and values URL-encoded ("artifactType=application%2Fvnd.cncf.notary.signature").
// A result longer than MaxQueryLen becomes "sha256-<64 hex>", which cannot be mistaken for a verbatim
// query (those always contain '='). An empty query gives "".
//
// The referrers controller should forward exactly the parameters kept here to the upstream, so that a key
// names precisely the question that was asked.
func NormalizeQuery(query url.Values) string {
	if len(query) == 0 { // the common case: no filter
		return ""
	}
	norm := url.Values{}
	for name, values := range query {
		if name == "" || slices.Contains(ignoredParams, name) || len(values) == 0 {
			continue
		}
		vs := slices.Clone(values)
		slices.Sort(vs)
		norm[name] = slices.Compact(vs)
	}
	encoded := norm.Encode() // sorted by name
	if len(encoded) <= MaxQueryLen {
		return encoded
	}
	sum := sha256.Sum256([]byte(encoded))
	return "sha256-" + hex.EncodeToString(sum[:])
}
