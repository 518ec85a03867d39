package referrers

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
)

// encode stores e as a versioned cachekey envelope around an OCI image index.
func encode(e *entry) ([]byte, error) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: e.manifests}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	return cachekey.Encode(cachekey.Entry{StoredAt: e.storedAt, FiltersApplied: e.filters, Source: e.source, Index: b})
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
	return &entry{storedAt: ce.StoredAt, manifests: idx.Manifests, filters: ce.FiltersApplied, source: ce.Source}, nil
}
