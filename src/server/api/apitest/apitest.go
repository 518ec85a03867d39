// Package apitest holds test fixtures shared by the tests of package api and of package console, which
// serve the same artifacts.
package apitest

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Manifests is a meta store plus manifest bytes kept in memory: an api.ArtifactSource for tests whose
// artifacts have no blob store behind them.
type Manifests struct {
	meta.Store
	// Bytes are the manifests by digest; tests add to it.
	Bytes map[string][]byte
}

// NewManifests returns store with no manifest bytes yet.
func NewManifests(store meta.Store) Manifests {
	return Manifests{Store: store, Bytes: map[string][]byte{}}
}

// ReadManifest returns the bytes of the manifest d; meta.ErrNotFound when Bytes has none.
func (m Manifests) ReadManifest(_ context.Context, d string) ([]byte, error) {
	if b, ok := m.Bytes[d]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("manifest %s: %w", d, meta.ErrNotFound)
}
