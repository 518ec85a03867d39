package meta

import (
	"context"
	"time"
)

// Garbage collection executions: Harbor's job kinds and statuses.
const (
	GCKindManual   = "MANUAL"
	GCKindSchedule = "SCHEDULE"

	GCPending = "Pending"
	GCRunning = "Running"
	GCSuccess = "Success"
	GCError   = "Error"
	GCStopped = "Stopped"
)

// GCExecution is one garbage collection run (Harbor's GC history entry).
type GCExecution struct {
	ID           int64
	Kind         string // GCKindManual or GCKindSchedule
	Status       string // GCPending ... GCStopped
	Parameters   string // JSON object: delete_untagged, dry_run, workers
	CreationTime time.Time
	UpdateTime   time.Time
}

// GCSchedule is the garbage collection schedule (one per database). Type is Harbor's schedule type:
// "None", "Hourly", "Daily", "Weekly" or "Custom" (Cron is then a 6-field cron with seconds).
type GCSchedule struct {
	Type         string
	Cron         string
	Parameters   string // JSON object, as GCExecution.Parameters
	CreationTime time.Time
	UpdateTime   time.Time
}

// GCBlobLink is one repository link of a blob, as the collector lists them.
type GCBlobLink struct {
	RepositoryID int64
	Digest       string
	CreationTime time.Time
}

// GCArtifact is what the collector needs of an artifact.
type GCArtifact struct {
	ID           int64
	RepositoryID int64
	Repository   string
	Digest       string
	MediaType    string
	Subject      string
	Tagged       bool
	PushTime     time.Time
}

// GCCandidate is a digest the sweep would collect: its links in Repos and, when Bytes, its bytes.
type GCCandidate struct {
	Digest string
	Repos  []int64
	Bytes  bool
}

// GCCondemned is what CondemnBlobs did to one candidate.
type GCCondemned struct {
	Links     int64 // links deleted
	Condemned bool  // the bytes are condemned (a tombstone was recorded)
}

// BlobPinStore is the writers' side of the garbage collection protocol (docs/gc.md). Every code path
// that is about to make a blob referenced (store its bytes, link it, record a manifest naming it) pins
// the blob first; the collector never deletes a blob pinned after its mark began, minus the grace period.
type BlobPinStore interface {
	// PinBlobs protects each digest until until. A digest the collector has condemned (its links are
	// gone, its bytes about to be removed) is first finished off under the same per-digest lock: remove
	// is called to delete its bytes, then the tombstone goes. Afterwards the caller sees the blob as
	// absent and must write its bytes again (or answer "unknown"), never find half-deleted content.
	PinBlobs(ctx context.Context, digests []string, until time.Time, remove func(digest string) error) error
	// UnpinBlobs ends the pins PinBlobs(digests, until) took: their expiry becomes at, so they protect
	// the blobs for one more grace period (a collection whose mark began before at may not have seen
	// the reference the writer made). A pin another writer extended meanwhile is left alone.
	UnpinBlobs(ctx context.Context, digests []string, until, at time.Time) error
}

// GCStore is the collector's side of the protocol and its bookkeeping (history, schedule, lease).
type GCStore interface {
	BlobPinStore
	// ListGCArtifacts pages through every artifact by ID, after afterID, at most n.
	ListGCArtifacts(ctx context.Context, afterID int64, n int) ([]GCArtifact, error)
	// ListGCBlobLinks pages through every blob link ordered by (digest, repository ID), after the given
	// position, at most n.
	ListGCBlobLinks(ctx context.Context, afterDigest string, afterRepo int64, n int) ([]GCBlobLink, error)
	// DeleteUntaggedArtifact deletes the artifact only if, at that moment, it has no tag, was pushed
	// before cutoff and its digest is not pinned past cutoff. It reports whether it deleted it.
	DeleteUntaggedArtifact(ctx context.Context, id int64, digest string, cutoff time.Time) (bool, error)
	// CondemnBlob, under the digest's lock and unless the digest is pinned past cutoff, deletes its links
	// in the repositories repos that were created before cutoff, and, when bytes is true and no link and
	// no artifact of that digest remains, records a tombstone: the bytes are then condemned and must be
	// removed with FinishCondemned. It returns the links deleted and whether the bytes were condemned.
	CondemnBlob(ctx context.Context, digest string, repos []int64, cutoff time.Time, bytes bool) (int64, bool, error)
	// FinishCondemned calls remove and deletes the tombstone, under the digest's lock, when the
	// tombstone is still there (a writer's PinBlobs may have finished it first); it reports whether it
	// did.
	FinishCondemned(ctx context.Context, digest string, remove func() error) (bool, error)
	// CondemnBlobs is CondemnBlob for several digests in one transaction, each under its lock (taken in
	// digest order: pass them sorted); its results are in the order of cands.
	CondemnBlobs(ctx context.Context, cands []GCCandidate, cutoff time.Time) ([]GCCondemned, error)
	// FinishCondemnedAll is FinishCondemned for several digests in one transaction (sorted, like
	// CondemnBlobs); it reports, in order, whether each was removed.
	FinishCondemnedAll(ctx context.Context, digests []string, remove func(digest string) error) ([]bool, error)
	// ListCondemned returns the tombstones left (by a collector that stopped between the two steps).
	ListCondemned(ctx context.Context) ([]string, error)
	// PurgePins deletes pins that expired before t and returns how many.
	PurgePins(ctx context.Context, t time.Time) (int64, error)

	// CreateGCExecution inserts e (setting ID and times).
	CreateGCExecution(ctx context.Context, e *GCExecution) error
	// UpdateGCExecution sets the status and, when log is not nil, the log of an execution.
	UpdateGCExecution(ctx context.Context, id int64, status string, log *string) error
	// GetGCExecution returns one execution, ErrNotFound when absent.
	GetGCExecution(ctx context.Context, id int64) (*GCExecution, error)
	// ListGCExecutions returns executions newest first and the total count.
	ListGCExecutions(ctx context.Context, offset, limit int) ([]*GCExecution, int64, error)
	// GCExecutionLog returns the stored log of an execution, ErrNotFound when absent.
	GCExecutionLog(ctx context.Context, id int64) (string, error)

	// GetGCSchedule returns the schedule, ErrNotFound when none was ever set.
	GetGCSchedule(ctx context.Context) (*GCSchedule, error)
	// PutGCSchedule creates or replaces the schedule.
	PutGCSchedule(ctx context.Context, s *GCSchedule) error
	// ClaimGCFire records that the scheduled run due at fire was started; it returns false when a node
	// already claimed that (or a later) time, so each scheduled time runs once across nodes.
	ClaimGCFire(ctx context.Context, fire time.Time) (bool, error)

	// AcquireGCLease takes the one garbage collection lease for owner until until, when it is free or
	// expired. RenewGCLease extends it; both report whether owner holds it. ReleaseGCLease frees it.
	AcquireGCLease(ctx context.Context, owner string, until time.Time) (bool, error)
	RenewGCLease(ctx context.Context, owner string, until time.Time) (bool, error)
	ReleaseGCLease(ctx context.Context, owner string) error
}
