package quota

import (
	"context"
	"errors"

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
// The step, and the race it leaves open: for each digest the Remover reported, ask the database whether
// any repository still links the blob or records a manifest with that digest (DigestReferenced, read
// through the writer so it sees every earlier commit); if none does, delete the file. A push or fill
// that stores the same digest between that question and the deletion and then links it (storage.Put
// finds the file present and keeps it, then LinkBlob commits) would be left with a link to missing
// bytes. Berth then answers BLOB_UNKNOWN for it (content/local treats "linked but gone" as missing), so
// the client uploads or the proxy fetches again; no wrong bytes are ever served. Garbage collection,
// with its pins and grace period, closes that window; this step should become a call into it.
func (e *Evictor) sweep(ctx context.Context, digests []string) int64 {
	var freed int64
	for _, s := range digests {
		d, err := digest.Parse(s)
		if err != nil {
			continue
		}
		referenced, err := e.store.DigestReferenced(ctx, s)
		if err != nil {
			e.log.WarnContext(ctx, "eviction: cannot tell whether a blob is still referenced; kept", "digest", s, "err", err)
			continue
		}
		if referenced {
			continue
		}
		size, err := e.blobs.Stat(ctx, d)
		if err != nil {
			continue // gone already
		}
		if err := e.blobs.Delete(ctx, d); err != nil && !errors.Is(err, storage.ErrNotFound) {
			e.log.WarnContext(ctx, "eviction: deleting blob failed", "digest", s, "err", err)
			continue
		}
		freed += size
	}
	return freed
}
