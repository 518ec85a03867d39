package meta

import (
	"context"
	"errors"
	"fmt"
)

// ErrQuotaExceeded reports that a write would take a project over its storage limit. Errors carrying it
// are *QuotaError.
var ErrQuotaExceeded = errors.New("storage quota exceeded")

// QuotaError is a blob link or a manifest record refused because the project's usage plus Adding would
// exceed Hard (the project's storage_limit).
type QuotaError struct {
	ProjectID int64
	Hard      int64 // the project's storage limit in bytes
	Used      int64 // the project's usage before the write
	Adding    int64 // the bytes the write would add
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("project %d: adding %d bytes to %d used exceeds the storage limit of %d bytes",
		e.ProjectID, e.Adding, e.Used, e.Hard)
}

// Unwrap makes errors.Is(err, ErrQuotaExceeded) hold.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// CachedArtifact is an artifact row with what eviction decides on.
type CachedArtifact struct {
	ProjectID int64
	Artifact
}

// BlobLink is one repository blob link.
type BlobLink struct {
	Digest string
	Size   int64
}

// QuotaStore is what quotas and eviction read beyond the other roles.
//
// Usage: a project uses the bytes of the distinct blobs linked into its repositories plus the bytes of its
// distinct manifests. A blob or a manifest held by several repositories of one project counts once;
// content shared by two projects counts in both (Harbor's rule).
//
// The store enforces Project.StorageLimit (> 0) itself: LinkBlob and PutArtifact refuse, with a
// *QuotaError, a digest new to the project that would take its usage over the limit. The check and the
// write are one transaction, serialised per project (a row lock on PostgreSQL, the single writer on
// SQLite), so concurrent pushes cannot overshoot together. Usage is computed from the rows each time
// (no counter that could drift); the cost is one aggregate over the project's rows, paid only by
// projects with a limit and only for digests new to them.
type QuotaStore interface {
	// ProjectUsage returns the project's usage in bytes (see Usage above); 0 for a project that does not
	// exist.
	ProjectUsage(ctx context.Context, projectID int64) (int64, error)
	// ListCachedArtifacts returns every artifact of the project (projectID 0: of every proxy-cache
	// project), in no particular order.
	ListCachedArtifacts(ctx context.Context, projectID int64) ([]*CachedArtifact, error)
	// ListBlobLinks returns the blob links of a repository; an empty list when it does not exist.
	ListBlobLinks(ctx context.Context, repo string) ([]BlobLink, error)
}
