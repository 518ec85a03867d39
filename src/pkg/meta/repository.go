package meta

import (
	"context"
	"time"
)

// Repository is a repository with the counts the Harbor API and the web console show.
type Repository struct {
	ID        int64
	ProjectID int64
	Name      string // full name "<project>/<path>"
	// ArtifactCount counts the top-level artifacts: those without a subject (referrers such as
	// signatures and SBOMs are shown with their subject, as Harbor shows accessories).
	ArtifactCount int64
	// PullCount counts manifest pulls (GET by tag or digest) in the repository, recorded in batches.
	PullCount    int64
	CreationTime time.Time
	// UpdateTime is the latest push time of an artifact in the repository, or CreationTime when empty.
	UpdateTime time.Time
}

// Tag is a tag row: a name pointing at an artifact.
type Tag struct {
	ID         int64
	ArtifactID int64
	Name       string
	PushTime   time.Time
}

// RepositoryStore is the read side of repositories and artifacts the Harbor API's repository and
// artifact endpoints and the web console page through, plus the removal of a whole repository.
type RepositoryStore interface {
	// ListProjectRepositories returns the repositories of a project ordered by name, filtered by a
	// case-insensitive name substring when name != "" (exact full name when exact is true), and the
	// total count of the filtered list. limit <= 0 returns all.
	ListProjectRepositories(ctx context.Context, projectID int64, name string, exact bool, offset, limit int) ([]*Repository, int64, error)
	// GetRepository returns the repository with that full name.
	GetRepository(ctx context.Context, name string) (*Repository, error)
	// ListArtifacts returns the top-level artifacts (without a subject) of repo, newest push first
	// (then highest ID), and their total count. limit <= 0 returns all. ErrNotFound when the repository
	// does not exist.
	ListArtifacts(ctx context.Context, repo string, offset, limit int) ([]*Artifact, int64, error)
	// ListArtifactTags returns the tags of the artifacts with these IDs, ordered by artifact ID then name.
	ListArtifactTags(ctx context.Context, artifactIDs []int64) ([]*Tag, error)
	// DeleteRepository removes the repository with its artifacts, tags and blob links. ErrNotFound when
	// it does not exist.
	DeleteRepository(ctx context.Context, name string) error
	// ProjectUsage returns the bytes a project's content takes, as quotas count it (QuotaStore): the
	// size of each distinct blob linked into any of its repositories plus the size of each distinct
	// manifest, each digest counted once however many repositories hold it. 0 for an empty or missing
	// project.
	ProjectUsage(ctx context.Context, projectID int64) (int64, error)
}
