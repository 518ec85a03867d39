package meta

import (
	"context"
	"time"
)

// Pull is one artifact's pulls gathered in memory since the last flush: the latest pull time and how
// many manifest pulls it had. RecordPulls adds Count to the repository's pull count.
type Pull struct {
	Repository string
	Digest     string
	Time       time.Time
	Count      int64
}

// PullStore records pull times and counts in batches (package content/local gathers them).
type PullStore interface {
	// RecordPulls applies every pull in one transaction, one statement for the artifacts and one for
	// the repositories: an artifact's pull time moves to Time unless it is later already (late or
	// reordered batches are harmless), and each repository's pull count grows by the sum of its Counts.
	// Pulls of artifacts or repositories that no longer exist are ignored.
	RecordPulls(ctx context.Context, pulls []Pull) error
}

// LifecycleStore is what retention and eviction read and remove.
type LifecycleStore interface {
	// ListProjectArtifacts returns every artifact of the project's repositories (referrers and index
	// children included), or only those of repo when repo != "", ordered by repository name then ID,
	// and the tags of each (artifact ID -> tag names in lexical order).
	ListProjectArtifacts(ctx context.Context, projectID int64, repo string) ([]*Artifact, map[int64][]string, error)
	// DeleteArtifact removes the artifact, its tags, and its entry in the referrer index.
	DeleteArtifact(ctx context.Context, repo, digest string) error
}

// Retention execution and task statuses (Harbor's names).
const (
	RetentionRunning  = "Running"
	RetentionStopping = "Stopping" // a stop was asked; the runner ends at the next repository
	RetentionSucceed  = "Succeed"
	RetentionError    = "Error"
	RetentionStopped  = "Stopped"
)

// RetentionPolicy is a stored retention policy: Policy is its Harbor JSON document (package retention
// owns its shape); ProjectID is its scope.
type RetentionPolicy struct {
	ID           int64
	ProjectID    int64
	Policy       string
	CreationTime time.Time
	UpdateTime   time.Time
}

// RetentionExecution is one run of a policy. Slot, for a scheduled run, is the schedule time it runs
// for: one execution per policy and slot, whichever node starts it first.
type RetentionExecution struct {
	ID        int64
	PolicyID  int64
	Status    string
	Trigger   string // "MANUAL" or "SCHEDULE"
	DryRun    bool
	Slot      time.Time
	StartTime time.Time
	EndTime   time.Time // zero while running
}

// RetentionTask is the part of an execution that covered one repository, with its log.
type RetentionTask struct {
	ID          int64
	ExecutionID int64
	Repository  string
	Status      string
	Total       int64 // candidates considered
	Retained    int64
	Log         string
	StartTime   time.Time
	EndTime     time.Time
}

// RetentionStore keeps retention policies, executions and tasks.
type RetentionStore interface {
	CreateRetentionPolicy(ctx context.Context, p *RetentionPolicy) (int64, error)
	// GetRetentionPolicy returns the policy or ErrNotFound.
	GetRetentionPolicy(ctx context.Context, id int64) (*RetentionPolicy, error)
	// UpdateRetentionPolicy stores p.Policy and p.ProjectID; ErrNotFound when it does not exist.
	UpdateRetentionPolicy(ctx context.Context, p *RetentionPolicy) error
	// DeleteRetentionPolicy removes the policy with its executions and tasks.
	DeleteRetentionPolicy(ctx context.Context, id int64) error
	// ListRetentionPolicies returns every policy, by ID (the scheduler reads them).
	ListRetentionPolicies(ctx context.Context) ([]*RetentionPolicy, error)

	// StartRetentionExecution inserts e as Running and sets e.ID. At most one execution of a policy is
	// Running or Stopping at a time, across every node sharing the database, and at most one per
	// (policy, non-zero Slot): ErrConflict otherwise. A Running execution whose heartbeat is older than
	// staleBefore (its node died) is marked Error first.
	StartRetentionExecution(ctx context.Context, e *RetentionExecution, staleBefore time.Time) error
	// HeartbeatRetentionExecution records that the runner is alive at t and returns the status
	// (Stopping when a stop was asked).
	HeartbeatRetentionExecution(ctx context.Context, id int64, t time.Time) (string, error)
	// FinishRetentionExecution sets the final status and end time.
	FinishRetentionExecution(ctx context.Context, id int64, status string, end time.Time) error
	// StopRetentionExecution asks a Running execution to stop; ErrNotFound when it is not running.
	StopRetentionExecution(ctx context.Context, id int64) error
	GetRetentionExecution(ctx context.Context, id int64) (*RetentionExecution, error)
	// ListRetentionExecutions returns a policy's executions, newest first, and their total count.
	ListRetentionExecutions(ctx context.Context, policyID int64, offset, limit int) ([]*RetentionExecution, int64, error)

	// AddRetentionTask inserts t and sets t.ID.
	AddRetentionTask(ctx context.Context, t *RetentionTask) error
	// ListRetentionTasks returns an execution's tasks by ID and their total count.
	ListRetentionTasks(ctx context.Context, executionID int64, offset, limit int) ([]*RetentionTask, int64, error)
	GetRetentionTask(ctx context.Context, id int64) (*RetentionTask, error)
}
