package content

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// BlobPinner protects blobs from the garbage collector while a write is about to make them referenced
// (docs/gc.md): an upload commit, a cross-repository mount, a pull-through fill and a manifest push pin
// their digests before they look at or write the bytes. After a nil return the blobs are either held
// and safe for the pin's lease, or absent (a condemned blob is removed first), never half-deleted.
type BlobPinner interface {
	PinBlobs(ctx context.Context, digests ...digest.Digest) error
}

// Pin calls p.PinBlobs, or does nothing when p is nil (no garbage collector runs against the store).
func Pin(ctx context.Context, p BlobPinner, digests ...digest.Digest) error {
	if p == nil || len(digests) == 0 {
		return nil
	}
	return p.PinBlobs(ctx, digests...)
}
