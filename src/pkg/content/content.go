// Package content defines what a repository serves over the OCI distribution API, as small role
// interfaces. The HTTP handlers in src/server/registry depend only on these. Implementations:
// package content/local (the registry's own storage and metadata), package proxy (pull-through of a
// proxy-cache project, wrapping local) and package referrers (the Proxy Referrer API, wrapping local).
//
// Errors are *errcode.Error values (MANIFEST_UNKNOWN, BLOB_UNKNOWN, DENIED, ...) so the handlers can
// write them without translation; any other error answers 500.
package content

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// MaxManifestSize is the largest manifest accepted or fetched (4 MiB); larger ones answer 413.
const MaxManifestSize = 4 << 20

// Repo names a repository inside a project.
type Repo struct {
	Project *meta.Project
	Name    string // full name, "<project>/<path>"
	Path    string // the part after the project, "<path>": the repository name upstream for proxy projects
}

// Manifest is a manifest's exact bytes with its digest and media type.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Body      []byte
	// Stale is set when a proxy served its local copy because the upstream failed.
	Stale bool
}

// PutResult is the outcome of a manifest push.
type PutResult struct {
	Digest  digest.Digest
	Subject digest.Digest // "" when the manifest has no subject
	Tags    []string      // the tags now pointing at the manifest: the reference's and the tag parameters'
}

// Manifests serves manifests by tag or digest.
type Manifests interface {
	// GetManifest returns the manifest that ref (a tag or a digest) names in repo.
	GetManifest(ctx context.Context, repo Repo, ref string) (*Manifest, error)
	// PutManifest validates and stores body under ref (a tag, or a digest that body must hash to) and
	// points each of tags (the push's `tag` query parameters) at it.
	PutManifest(ctx context.Context, repo Repo, ref, mediaType string, body []byte, tags ...string) (*PutResult, error)
	// DeleteManifest deletes the manifest named by a digest, or only the tag when ref is a tag.
	DeleteManifest(ctx context.Context, repo Repo, ref string) error
}

// BlobContent is an open blob. If it also implements io.Seeker the handler serves Range requests from
// it; otherwise the full content is sent. Close must be called.
type BlobContent interface {
	io.ReadCloser
	Size() int64
}

// Blobs serves and accepts blobs.
type Blobs interface {
	// StatBlob returns the size of a blob in repo.
	StatBlob(ctx context.Context, repo Repo, d digest.Digest) (int64, error)
	// OpenBlob opens a blob in repo for reading.
	OpenBlob(ctx context.Context, repo Repo, d digest.Digest) (BlobContent, error)
	// DeleteBlob removes the blob from repo.
	DeleteBlob(ctx context.Context, repo Repo, d digest.Digest) error
	// MountBlob links a blob that from holds into repo. It returns BLOB_UNKNOWN when from lacks it. A from
	// with an empty Name stands for every repository of from.Project (a mount without `from`).
	MountBlob(ctx context.Context, from, repo Repo, d digest.Digest) (int64, error)
}

// Uploads accepts blob uploads (POST, PATCH, PUT) into a repository.
type Uploads interface {
	// StartUpload opens an upload session in repo.
	StartUpload(ctx context.Context, repo Repo) (string, error)
	// UploadSize returns the bytes received so far.
	UploadSize(ctx context.Context, repo Repo, id string) (int64, error)
	// AppendUpload appends a chunk; offset < 0 means "wherever the session ends".
	AppendUpload(ctx context.Context, repo Repo, id string, offset int64, r io.Reader) (int64, error)
	// CommitUpload verifies the content against d, stores it and links it into repo.
	CommitUpload(ctx context.Context, repo Repo, id string, d digest.Digest) (int64, error)
	// CancelUpload drops the session.
	CancelUpload(ctx context.Context, repo Repo, id string) error
}

// Tags lists tags.
type Tags interface {
	// ListTags returns tags after last in lexical order, at most n (n <= 0: all).
	ListTags(ctx context.Context, repo Repo, last string, n int) ([]string, error)
}

// ReferrersQuery is a referrers request, typed: the HTTP handler decides which query parameters become
// these fields (server/registry referrersQuery) and nothing else of the request reaches the domain, so
// only ArtifactType can change a cache key or the query sent upstream.
type ReferrersQuery struct {
	ArtifactType string // "" for no filter; one value (a repeated artifactType is refused by the handler)
	N            int    // page size requested by the client; 0 = the server default
	Last         string // opaque cursor from the previous page's Link, "" for the first page
}

// Cache results reported in the X-Cache header.
const (
	CacheHit   = "HIT"
	CacheMiss  = "MISS"
	CacheStale = "STALE"
	CacheLocal = "LOCAL"
)

// ReferrersPage is one page of a referrers list.
type ReferrersPage struct {
	Manifests      []ocispec.Descriptor
	FiltersApplied []string // e.g. ["artifactType"], sent as OCI-Filters-Applied
	Next           string   // cursor for the next page ("" on the last page), sent back as last=<Next>
	Cache          string   // "" or one of the Cache* values, sent as X-Cache
	// Encoded, when not nil, is the image index of Manifests already encoded (what encoding/json writes
	// for it), shared and read-only: a producer that keeps the encoding of a list it serves often hands
	// it over so that the handler sends it without encoding again.
	Encoded []byte
}

// Referrers lists the referrers of a subject.
type Referrers interface {
	ListReferrers(ctx context.Context, repo Repo, subject digest.Digest, q ReferrersQuery) (*ReferrersPage, error)
}

// Catalog lists repositories.
type Catalog interface {
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
}

// Service is everything the OCI handlers need.
type Service interface {
	Manifests
	Blobs
	Uploads
	Tags
	Referrers
	Catalog
}

// Composite is a Service assembled from parts, each role named, so that which implementation answers
// which requests is written where the service is built (e.g. the pull-through service for everything
// but referrers, the Proxy Referrer API controller for those) rather than implied by a method that
// overrides an embedded one.
type Composite struct {
	Manifests
	Blobs
	Uploads
	Tags
	Referrers
	Catalog
}

var _ Service = Composite{}
