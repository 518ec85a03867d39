package quota

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/storage"
)

// BlobStore is what eviction needs of the blob store: sizes, manifest bytes and deletion.
type BlobStore interface {
	storage.BlobStatter
	storage.BlobReader
	storage.BlobDeleter
}

// sweep deletes the bytes of the digests eviction left unreferenced and returns the bytes deleted.
//
// It takes the garbage collector's path for each digest (docs/gc.md), so that a concurrent push, upload,
// mount or fill of the same digest is never left with a link to missing bytes: CondemnBlob, under the
// digest's lock, records a tombstone only when no repository links the blob or records a manifest of it
// and no writer has pinned it (writers pin before they store or link, and stay pinned a grace period
// after); FinishCondemned then deletes the bytes and the tombstone under the same lock, unless a writer
// that arrived meanwhile already did so (and stores the bytes again). A digest that is pinned or
// referenced is kept; the garbage collector will look at it again.
func (e *Evictor) sweep(ctx context.Context, digests []string) int64 {
	var freed int64
	for _, s := range digests {
		d, err := digest.Parse(s)
		if err != nil {
			continue
		}
		size, err := e.blobs.Stat(ctx, d)
		if err != nil {
			continue // gone already
		}
		_, condemned, err := e.store.CondemnBlob(ctx, s, nil, time.Now(), true)
		if err != nil {
			e.log.WarnContext(ctx, "eviction: cannot condemn an unreferenced blob; kept for garbage collection", "digest", s, "err", err)
			continue
		}
		if !condemned {
			continue // still referenced, or pinned by a writer
		}
		removed, err := e.store.FinishCondemned(ctx, s, func() error {
			if err := e.blobs.Delete(ctx, d); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			return nil
		})
		if err != nil {
			e.log.WarnContext(ctx, "eviction: deleting a condemned blob failed; garbage collection finishes it", "digest", s, "err", err)
			continue
		}
		if removed {
			freed += size
		}
	}
	return freed
}
