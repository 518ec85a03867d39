// Package meta holds Berth's metadata: projects, upstream registries, repositories, artifacts (manifests),
// tags, repository blob links and the subject -> referrer index: the types and the role interfaces.
// Package meta/sqlstore implements them with beego's ORM on SQLite (embedded default) or PostgreSQL,
// with versioned migrations; this package stays free of database imports so HTTP handlers can use it.
//
// Every method takes a context first. A missing row is reported as an error wrapping ErrNotFound, a
// uniqueness violation as one wrapping ErrConflict; callers test with errors.Is.
package meta

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"
)

var (
	// ErrNotFound reports that the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports that a row with the same unique key exists, or that a row is still in use.
	ErrConflict = errors.New("conflict")
)

// Project metadata keys (Harbor names; values are strings).
const (
	MetaPublic                   = "public"
	MetaProxyReferrerAPI         = "proxy_referrer_api"
	MetaProxyReferrerCacheSecond = "proxy_referrer_cache_seconds"
	// MetaAllowSparseManifests lets pushes of the project reference content the repository does not
	// hold (see Project.AllowSparseManifests).
	MetaAllowSparseManifests = "allow_sparse_manifests"
	// MetaProxyTagFreshnessSecond is how long, in seconds, a tag of a proxy-cache project checked with
	// the upstream is served from its local copy without asking again.
	MetaProxyTagFreshnessSecond = "proxy_tag_freshness_seconds"
)

// MaxMetadataSeconds bounds the *_seconds project metadata (MetaProxyReferrerCacheSecond,
// MetaProxyTagFreshnessSecond): one week, the longest an upstream referrers answer is kept. The API
// refuses larger values; Seconds clamps any stored before that check.
const MaxMetadataSeconds = 7 * 24 * 60 * 60

// MaxArtifactTypeLength is the longest artifactType accepted from a client (a referrers filter) or
// used as a key: an artifactType is a media type, and RFC 6838 section 4.2 bounds a media type's type
// and subtype names at 127 characters each (127 + "/" + 127 = 255).
const MaxArtifactTypeLength = 255

// Project is a namespace of repositories. RegistryID > 0 makes it a proxy-cache project of that registry.
type Project struct {
	ID           int64
	Name         string
	RegistryID   int64
	Metadata     map[string]string
	StorageLimit int64
	CreationTime time.Time
	UpdateTime   time.Time
}

// Clone returns a copy of p that shares nothing with it (its Metadata map is copied).
func (p *Project) Clone() *Project {
	c := *p
	c.Metadata = maps.Clone(p.Metadata)
	return &c
}

// IsProxy reports whether p is a proxy-cache project.
func (p *Project) IsProxy() bool { return p.RegistryID > 0 }

// Public reports whether p is readable anonymously.
func (p *Project) Public() bool { return isTrue(p.Metadata[MetaPublic]) }

// ProxyReferrerAPI reports whether p forwards referrers requests to its upstream.
func (p *Project) ProxyReferrerAPI() bool {
	return p.IsProxy() && isTrue(p.Metadata[MetaProxyReferrerAPI])
}

// IsSecondsKey reports whether key is one of the *_seconds metadata keys (MetaProxyReferrerCacheSecond,
// MetaProxyTagFreshnessSecond), whose values ParseSeconds checks.
func IsSecondsKey(key string) bool {
	return key == MetaProxyReferrerCacheSecond || key == MetaProxyTagFreshnessSecond
}

// ParseSeconds validates the value of a *_seconds key before it is stored, such as
// proxy_referrer_cache_seconds, the freshness window of ProxyReferrerAPI's upstream answers: a whole
// number of seconds from 0 to MaxMetadataSeconds. The error's text names the key and is fit to show.
func ParseSeconds(key, value string) (int64, error) {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 0 || n > MaxMetadataSeconds {
		return 0, fmt.Errorf("metadata %s must be a whole number of seconds from 0 to %d (one week), got %q", key, MaxMetadataSeconds, value)
	}
	return n, nil
}

// AllowSparseManifests reports whether p accepts sparse manifests: an index whose child manifests, or an
// image manifest whose layers, were not pushed to the repository. Off unless the project's metadata
// allow_sparse_manifests is "true". The config blob is always required. An absent child or layer is still
// never served: a GET of it answers 404 until it is pushed.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests
func (p *Project) AllowSparseManifests() bool { return isTrue(p.Metadata[MetaAllowSparseManifests]) }

// Seconds returns the duration held by p's metadata key, a count of seconds; ok is false when the key
// is absent or not a non-negative decimal integer. A value over MaxMetadataSeconds counts as
// MaxMetadataSeconds, so no stored value can overflow time.Duration (9300000000 seconds would wrap
// negative).
func (p *Project) Seconds(key string) (d time.Duration, ok bool) {
	v, present := p.Metadata[key]
	if !present {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		if !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
		n = MaxMetadataSeconds // all digits, beyond uint64
	}
	return time.Duration(min(n, MaxMetadataSeconds)) * time.Second, true
}

func isTrue(v string) bool { return v == "true" || v == "1" }

// Registry is an upstream registry endpoint. AccessSecret is stored as given: callers encrypt it before
// Create/Update and decrypt after Get (see package secret).
type Registry struct {
	ID             int64
	Name           string
	Type           string
	URL            string
	Description    string
	Insecure       bool
	CACertificate  string
	CredentialType string
	AccessKey      string
	AccessSecret   string
	CreationTime   time.Time
	UpdateTime     time.Time
}

// Artifact is a manifest (image manifest, index, or Docker manifest/list) stored in a repository.
type Artifact struct {
	ID           int64
	RepositoryID int64
	Repository   string // full name "<project>/<path>"
	Digest       string
	MediaType    string
	ArtifactType string // the descriptor artifactType per the spec (manifest artifactType, else config.mediaType for image manifests)
	Size         int64
	Annotations  map[string]string
	Subject      string // digest of the subject, "" when none
	PushTime     time.Time
	PullTime     time.Time
	// Origin is how the manifest first came into the repository: OriginPushed (a client PUT) or
	// OriginPulled (fetched from a proxy-cache project's upstream); "" for rows recorded before Berth
	// kept it (unknown). Storing an existing digest again does not change it.
	Origin string
}

// Clone returns a copy of a that shares nothing with it (its Annotations map is copied).
func (a *Artifact) Clone() *Artifact {
	c := *a
	c.Annotations = maps.Clone(a.Annotations)
	return &c
}

// Artifact origins (Artifact.Origin).
const (
	OriginPushed = "pushed"
	OriginPulled = "pulled"
)

// Page selects part of a list ordered by name: entries after Last, at most N (N <= 0: all).
type Page struct {
	Last string
	N    int
}

// ProjectStore manages projects.
type ProjectStore interface {
	// CreateProject inserts p, sets p.ID and the times, and returns the ID. ErrConflict when the name exists.
	CreateProject(ctx context.Context, p *Project) (int64, error)
	// GetProject returns the project with that ID.
	GetProject(ctx context.Context, id int64) (*Project, error)
	// GetProjectByName returns the project with that name.
	GetProjectByName(ctx context.Context, name string) (*Project, error)
	// ListProjects returns projects ordered by name, filtered by a name substring when name != "", and the total count.
	ListProjects(ctx context.Context, name string, offset, limit int) ([]*Project, int64, error)
	// UpdateProject stores p's metadata, registry ID and storage limit.
	UpdateProject(ctx context.Context, p *Project) error
	// DeleteProject removes the project. ErrConflict when it still holds repositories.
	DeleteProject(ctx context.Context, id int64) error
}

// RegistryStore manages upstream registries.
type RegistryStore interface {
	CreateRegistry(ctx context.Context, r *Registry) (int64, error)
	GetRegistry(ctx context.Context, id int64) (*Registry, error)
	ListRegistries(ctx context.Context, name string, offset, limit int) ([]*Registry, int64, error)
	UpdateRegistry(ctx context.Context, r *Registry) error
	// DeleteRegistry removes the registry. ErrConflict when a project uses it.
	DeleteRegistry(ctx context.Context, id int64) error
}

// ArtifactStore manages repositories, manifests, tags and the referrer index. Repositories are created
// implicitly by the first PutArtifact or LinkBlob in them.
type ArtifactStore interface {
	// PutArtifact records a manifest in repo (creating the repository row in projectID if needed) and
	// points each non-empty tag at it, in one transaction. Putting an existing digest updates nothing but
	// the tags.
	PutArtifact(ctx context.Context, projectID int64, repo string, a *Artifact, tags ...string) error
	// GetArtifact returns the artifact with that digest in repo.
	GetArtifact(ctx context.Context, repo, digest string) (*Artifact, error)
	// ResolveTag returns the artifact the tag points at.
	ResolveTag(ctx context.Context, repo, tag string) (*Artifact, error)
	// ListTags returns tag names of repo in lexical order after page.Last, at most page.N.
	// ErrNotFound when the repository does not exist.
	ListTags(ctx context.Context, repo string, page Page) ([]string, error)
	// DeleteTag removes one tag.
	DeleteTag(ctx context.Context, repo, tag string) error
	// DeleteArtifact removes the artifact, its tags, and its entry in the referrer index.
	DeleteArtifact(ctx context.Context, repo, digest string) error
	// ListReferrers returns the artifacts in repo whose subject is subject, ordered by push time, newest
	// first, then digest; filtered to that artifact type when artifactType != "".
	ListReferrers(ctx context.Context, repo, subject, artifactType string) ([]*Artifact, error)
	// ListRepositories returns repository names in lexical order after page.Last, at most page.N.
	ListRepositories(ctx context.Context, page Page) ([]string, error)
	// CountRepositories returns the number of repositories in a project.
	CountRepositories(ctx context.Context, projectID int64) (int64, error)
	// TouchPull records that the artifact was pulled at t.
	TouchPull(ctx context.Context, repo, digest string, t time.Time) error
}

// BlobLinkStore records which blobs belong to which repository. Blob bytes live in package storage; a
// blob is visible in a repository only through a link.
type BlobLinkStore interface {
	// LinkBlob links the blob into repo (creating the repository row in projectID if needed). Idempotent.
	LinkBlob(ctx context.Context, projectID int64, repo, digest string, size int64) error
	// BlobLinked returns the size of a blob linked in repo, or ErrNotFound.
	BlobLinked(ctx context.Context, repo, digest string) (int64, error)
	// BlobLinkedInProject returns the size of a blob linked in any repository of the project, or
	// ErrNotFound.
	BlobLinkedInProject(ctx context.Context, projectID int64, digest string) (int64, error)
	// UnlinkBlob removes the link.
	UnlinkBlob(ctx context.Context, repo, digest string) error
}

// Store is everything package meta offers; main builds one and hands each consumer the role it needs.
type Store interface {
	ProjectStore
	RegistryStore
	ArtifactStore
	BlobLinkStore
	RepositoryStore
	SessionStore
	RobotStore
	UserStore
	MemberStore
	AuditStore
	PullStore
	LifecycleStore
	RetentionStore
	QuotaStore
	GCStore
	// Ping checks the database connection.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
