package main

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/server/api"
)

// apiArtifacts is what the Harbor API's repository and artifact endpoints (and the console) read:
// repository lists from the store, artifacts through the referrer cache wrapper (so that deletes drop
// the cached referrer lists), and manifest bytes from the blob store. DeleteRepository goes to the store
// directly: this node's cached referrer lists of that repository expire within their TTL (2 s), as
// other nodes' do.
type apiArtifacts struct {
	meta.RepositoryStore
	meta.ArtifactStore
	blobs storage.BlobReader
}

var _ api.ArtifactSource = apiArtifacts{}

// ReadManifest reads at most content.MaxManifestSize bytes of a stored manifest.
func (a apiArtifacts) ReadManifest(ctx context.Context, d string) ([]byte, error) {
	b, err := a.blobs.Open(ctx, digest.Digest(d))
	if err != nil {
		return nil, err
	}
	defer func() { _ = b.Close() }()
	body, err := io.ReadAll(io.LimitReader(b, content.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	if len(body) > content.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s exceeds %d bytes", d, content.MaxManifestSize)
	}
	return body, nil
}

// upstreamPinger checks a registry endpoint with the upstream client's settings, as the API's
// registry ping does (serve.go).
func upstreamPinger(opts upstream.Options) api.RegistryPinger {
	return api.RegistryPingerFunc(func(ctx context.Context, r meta.Registry) error {
		ep, err := upstream.EndpointOf(&r, plain{})
		if err != nil {
			return err
		}
		c, err := upstream.NewClient(ep, opts)
		if err != nil {
			return err
		}
		return c.Ping(ctx)
	})
}
