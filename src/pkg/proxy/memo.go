package proxy

import (
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// memo is what the proxy remembers of the upstream's recent answers, so that anonymous clients cannot
// turn their requests into as many upstream requests (each of which costs rate limit at Docker Hub):
//
//   - notFound: an upstream "not found" for a manifest (tag or digest) or blob of a (project,
//     repository, reference), or for a repository's tag list, is answered locally for negTTL (Options.NegativeCacheTTL). A tag pushed
//     upstream meanwhile shows once that time has passed.
//   - sizes: the size the upstream gave for a blob in answer to a HEAD, for blobSizeTTL (a digest's
//     size cannot change; a blob deleted upstream meanwhile is found missing by the GET).
//   - checked: a tag the upstream confirmed names a digest is served from the local copy of that
//     digest, without asking, for the project's tag freshness window (metadata
//     proxy_tag_freshness_seconds, else Options.TagFreshness). A tag moved upstream shows once the
//     window has passed.
//
// Both are in-process, bounded (memoEntries each) and keyed by copies of the client's strings. Each
// node of a cluster keeps its own, so N nodes ask at most N times per window.
type memo struct {
	negTTL      time.Duration
	tagFreshDef time.Duration
	notFound    *syncutil.TTLMap[refKey, struct{}]
	checked     *syncutil.TTLMap[refKey, digest.Digest]
	sizes       *syncutil.TTLMap[refKey, int64]
}

// memoEntries bounds each map of a memo (a few hundred bytes an entry); blobSizeTTL is how long a
// blob size from an upstream HEAD is reused.
const (
	memoEntries = 8192
	blobSizeTTL = 10 * time.Minute
)

// refKind tells a manifest reference from a blob digest in a refKey: the same digest may be unknown
// as one and held as the other.
type refKind byte

const (
	refManifest refKind = iota + 1
	refBlob
	refTags // a repository's tag list (ref "")
)

// refKey names a reference in a repository of a project.
type refKey struct {
	project   int64
	kind      refKind
	repo, ref string
}

// keyOf returns the key of ref in repo; its strings are copies, so a kept entry does not pin the
// request's memory.
func keyOf(kind refKind, repo content.Repo, ref string) refKey {
	return refKey{project: repo.Project.ID, kind: kind, repo: strings.Clone(repo.Path), ref: strings.Clone(ref)}
}

// flight returns the name of k's coalesced upstream check.
func (k refKey) flight() string {
	return strconv.FormatInt(k.project, 10) + ":" + strconv.Itoa(int(k.kind)) + ":" + k.repo + ":" + k.ref
}

func newMemo(opts Options) *memo {
	return &memo{
		negTTL: opts.NegativeCacheTTL, tagFreshDef: opts.TagFreshness,
		notFound: syncutil.NewTTLMap[refKey, struct{}](memoEntries, opts.Now),
		checked:  syncutil.NewTTLMap[refKey, digest.Digest](memoEntries, opts.Now),
		sizes:    syncutil.NewTTLMap[refKey, int64](memoEntries, opts.Now),
	}
}

// isNotFound reports whether the upstream said k does not exist within the negative-cache TTL.
func (m *memo) isNotFound(k refKey) bool {
	_, ok := m.notFound.Get(k)
	return ok
}

// setNotFound remembers that the upstream does not know k (and forgets what a tag named).
func (m *memo) setNotFound(k refKey) {
	m.notFound.Put(k, struct{}{}, m.negTTL)
	m.checked.Delete(k)
	m.sizes.Delete(k)
}

// blobSize returns the size an upstream HEAD gave for blob k recently.
func (m *memo) blobSize(k refKey) (int64, bool) { return m.sizes.Get(k) }

// setBlobSize remembers the size an upstream HEAD gave for blob k.
func (m *memo) setBlobSize(k refKey, size int64) { m.sizes.Put(k, size, blobSizeTTL) }

// tagFreshness returns p's tag freshness window.
func (m *memo) tagFreshness(p *meta.Project) time.Duration {
	if d, ok := p.Seconds(meta.MetaProxyTagFreshnessSecond); ok {
		return d
	}
	return m.tagFreshDef
}

// checkedDigest returns the digest the upstream named for tag k within p's freshness window.
func (m *memo) checkedDigest(k refKey) (digest.Digest, bool) {
	return m.checked.Get(k)
}

// setChecked remembers that the upstream named d for tag k, for p's freshness window.
func (m *memo) setChecked(k refKey, p *meta.Project, d digest.Digest) {
	m.checked.Put(k, d, m.tagFreshness(p))
}

// forget drops what the upstream said of k.
func (m *memo) forget(k refKey) {
	m.notFound.Delete(k)
	m.checked.Delete(k)
	m.sizes.Delete(k)
}
