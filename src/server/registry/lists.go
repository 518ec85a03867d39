package registry

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/ociindex"
)

// nextLink sets `Link: <path?query>; rel="next"` (a link relative to this host, as oras requires).
func nextLink(w http.ResponseWriter, path string, q url.Values) {
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

// nextRepoLink is nextLink for a page of a repository's list (suffix "/tags/list", "/referrers/<digest>"),
// in the form the client asked for: its repository name and, through a mirror route, its ns parameter,
// so that following the link reaches the same project.
func nextRepoLink(w http.ResponseWriter, req *request, suffix string, q url.Values) {
	if req.ns != "" {
		q.Set("ns", req.ns)
	}
	nextLink(w, "/v2/"+req.route.Name+suffix, q)
}

// tags serves GET /v2/<name>/tags/list with n and last; a Link header when more tags follow. The
// answer's name is <name> as requested (distribution-spec: the name of the target repository), also when
// a mirror route served it from a project.
func (h *Handler) tags(w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := parsePagination(r.URL.Query(), 0)
	if err != nil {
		return err
	}
	fetch := 0 // all
	if p.hasN {
		fetch = p.n + 1 // one more than asked tells whether a next page exists
	}
	tags, err := h.svc.ListTags(r.Context(), req.repo, p.last, fetch)
	if err != nil {
		return err
	}
	if p.hasN && len(tags) > p.n {
		tags = tags[:p.n]
		if p.n > 0 {
			nextRepoLink(w, req, "/tags/list", url.Values{"n": {strconv.Itoa(p.n)}, "last": {tags[len(tags)-1]}})
		}
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{req.route.Name, nonNil(tags)})
	return nil
}

// catalog serves GET /v2/_catalog (administrators only) with n and last.
func (h *Handler) catalog(w http.ResponseWriter, r *http.Request, _ *request) error {
	p, err := parsePagination(r.URL.Query(), 0)
	if err != nil {
		return err
	}
	fetch := 0
	if p.hasN {
		fetch = p.n + 1
	}
	repos, err := h.svc.ListRepositories(r.Context(), p.last, fetch)
	if err != nil {
		return err
	}
	if p.hasN && len(repos) > p.n {
		repos = repos[:p.n]
		if p.n > 0 {
			nextLink(w, "/v2/_catalog", url.Values{"n": {strconv.Itoa(p.n)}, "last": {repos[len(repos)-1]}})
		}
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Repositories []string `json:"repositories"`
	}{nonNil(repos)})
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// referrers serves GET /v2/<name>/referrers/<digest>: always 200 with an image index (empty when
// nothing refers to the digest); artifactType filters (OCI-Filters-Applied says so), n sets the page size
// (the service applies content.PageRule: absent or 0 is its default, above its maximum the maximum), and a Link to this host
// carries the service's cursor when more entries follow.
// maxPooledBody is the largest encoded referrers page whose buffer is kept for reuse.
const maxPooledBody = 64 << 10

func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, req *request) error {
	d := req.route.Digest
	rq, err := referrersQuery(r.URL.Query())
	if err != nil {
		return err
	}
	n, at := rq.N, rq.ArtifactType
	page, err := h.svc.ListReferrers(r.Context(), req.repo, d, rq)
	if err != nil {
		return err
	}
	if len(page.FiltersApplied) > 0 {
		w.Header().Set(headerFiltersApplied, strings.Join(page.FiltersApplied, ","))
	}
	if v, ok := cacheValues[page.Cache]; ok {
		w.Header()[headerCache] = v
	} else if page.Cache != "" {
		w.Header().Set(headerCache, page.Cache)
	}
	if page.Next != "" {
		if n == 0 {
			// A page followed by another is full: its size is the default, kept for the next pages.
			n = len(page.Manifests)
		}
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {page.Next}}
		if at != "" {
			next.Set("artifactType", at)
		}
		nextRepoLink(w, req, "/referrers/"+d.String(), next)
	}
	manifests := page.Manifests
	if manifests == nil {
		manifests = []ocispec.Descriptor{}
	}
	if page.Encoded != nil {
		h.writeRaw(w, r, http.StatusOK, ocispec.MediaTypeImageIndex, page.Encoded)
		return nil
	}
	buf, _ := h.bodies.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	body, ok := ociindex.AppendReferrersIndex((*buf)[:0], manifests)
	if ok {
		h.writeRaw(w, r, http.StatusOK, ocispec.MediaTypeImageIndex, body)
	}
	if cap(body) <= maxPooledBody { // Write copied it out; a rare huge page is left to the GC
		*buf = body
		h.bodies.Put(buf)
	}
	if ok {
		return nil
	}
	h.writeBody(w, r, http.StatusOK, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	})
	return nil
}
