package content

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// BlobPinner protects blobs from the garbage collector while a write is about to make them referenced
// (docs/gc.md): an upload commit, a cross-repository mount, a pull-through fill and a manifest push pin
// their digests before they look at or write the bytes, and unpin once the link or record is committed.
// After a nil return the blobs are either held and safe until unpin (or the pin's lease), or absent (a
// condemned blob is removed first), never half-deleted.
type BlobPinner interface {
	PinBlobs(ctx context.Context, digests ...digest.Digest) (unpin func(), err error)
}

// Pin calls p.PinBlobs, or does nothing when p is nil (no garbage collector runs against the store).
// unpin is never nil.
func Pin(ctx context.Context, p BlobPinner, digests ...digest.Digest) (unpin func(), err error) {
	if p == nil || len(digests) == 0 {
		return func() {}, nil
	}
	return p.PinBlobs(ctx, digests...)
}
