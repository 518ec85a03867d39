package referrers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
)

// encode stores e as a versioned cachekey envelope around an OCI image index; source says how the
// upstream answered (cachekey.SourceReferrersAPI, SourceTagSchema or sourceNotFound), kept in the envelope
// for operators reading the cache, never read back.
func encode(e *entry, source string) ([]byte, error) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: e.manifests}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	return cachekey.Encode(cachekey.Entry{StoredAt: e.storedAt, Source: source, Index: b})
}

// decode reads an envelope written by encode. Any error means the entry is unusable.
func decode(b []byte) (*entry, error) {
	ce, err := cachekey.Decode(b)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(ce.Index, &idx); err != nil {
		return nil, fmt.Errorf("cached referrers index: %w", err)
	}
	if idx.MediaType != ocispec.MediaTypeImageIndex || idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("cached referrers index: not an image index")
	}
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	return &entry{storedAt: ce.StoredAt, manifests: idx.Manifests}, nil
}

// decodedEntries remembers the entries recently decoded, keyed by a seeded hash of their encoded bytes
// and checked against those bytes, so that a cache hit on unchanged bytes (the common case: an entry is
// read far more often than it is written) costs a hash and a compare instead of a JSON decode. The
// entries it hands out are shared between requests and must be treated as read-only (nothing in this
// package modifies an entry after building it). Bytes that fail to decode are never remembered, so a
// corrupt entry is reported (and deleted) on every read. Bounded by count and by the total size of the
// bytes held; when full, an arbitrary entry goes. Safe for concurrent use.
type decodedEntries struct {
	seed     maphash.Seed
	mu       sync.Mutex
	m        map[uint64]decodedEntry
	size     int // sum of the sizes of the entries in m
	maxCount int
	maxSize  int
}

type decodedEntry struct {
	e       *entry
	encoded []byte // a copy of the bytes e was decoded from
}

// Bounds of the decoded-entry memo: count, total encoded size, and the largest entry remembered.
const (
	decodedMaxCount = 2048
	decodedMaxSize  = 32 << 20
	decodedMaxEntry = 1 << 20
)

func newDecodedEntries(maxCount, maxSize int) *decodedEntries {
	return &decodedEntries{seed: maphash.MakeSeed(), m: map[uint64]decodedEntry{}, maxCount: maxCount, maxSize: maxSize}
}

// decode returns the entry b encodes, from memory when the same bytes were decoded before. b is not
// retained.
func (d *decodedEntries) decode(b []byte) (*entry, error) {
	if d == nil || len(b) > decodedMaxEntry || len(b) > d.maxSize {
		return decode(b)
	}
	sum := maphash.Bytes(d.seed, b)
	d.mu.Lock()
	de, ok := d.m[sum]
	d.mu.Unlock()
	if ok && bytes.Equal(de.encoded, b) {
		return de.e, nil
	}
	e, err := decode(b)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.m[sum]; ok { // the same bytes (a racing decode) or, rarely, a collision: replace
		delete(d.m, sum)
		d.size -= len(old.encoded)
	}
	for k, old := range d.m {
		if len(d.m) < d.maxCount && d.size+len(b) <= d.maxSize {
			break
		}
		delete(d.m, k)
		d.size -= len(old.encoded)
	}
	d.m[sum] = decodedEntry{e: e, encoded: bytes.Clone(b)}
	d.size += len(b)
	return e, nil
}
