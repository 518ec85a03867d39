package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Source says where a referrers list came from.
type Source int

const (
	// SourceAPI means the list came from the upstream's referrers API (GET /v2/<repo>/referrers/<digest>).
	SourceAPI Source = iota + 1
	// SourceTagSchema means the list came from the referrers tag schema (the index tagged <alg>-<hex>), for upstreams without
	// the API.
	SourceTagSchema
)

// String is the source's one spelling, also stored in the referrers cache envelope
// (cachekey.SourceReferrersAPI, cachekey.SourceTagSchema).
func (s Source) String() string {
	switch s {
	case SourceAPI:
		return "referrers-api"
	case SourceTagSchema:
		return "tag-schema"
	}
	return fmt.Sprintf("source(%d)", int(s))
}

// Capability is what the client knows of an upstream's referrers API.
type Capability int32

const (
	// CapabilityUnknown means the API has not been asked yet.
	CapabilityUnknown Capability = iota
	// CapabilitySupported means the last answer came from the API.
	CapabilitySupported
	// CapabilityUnsupported means the API was missing at the last probe.
	CapabilityUnsupported
)

// ReferrersResult is an upstream's referrers list for one subject.
type ReferrersResult struct {
	// Index is a fresh OCI image index (schemaVersion 2, the index media type) holding every valid
	// descriptor of every page in upstream order, de-duplicated by digest. Manifests is never nil.
	Index ocispec.Index
	// FiltersApplied lists the filters applied to Index: from the API, the OCI-Filters-Applied values
	// every page carried; from the tag schema, ["artifactType"] when the query named an artifactType
	// (the client filtered). Empty when Index is unfiltered.
	FiltersApplied []string
	// Source says whether the list came from the API or the tag schema.
	Source Source
	// Dropped counts descriptors left out because their digest was invalid, their size negative or
	// they were not descriptors at all.
	Dropped int
}

// errReferrersUnsupported is the internal signal that the upstream has no referrers API.
var errReferrersUnsupported = errors.New("referrers API not supported by the upstream")

// ListReferrers lists the referrers of subject ref (a digest) in repo. rawQuery (e.g.
// "artifactType=...") is sent verbatim to the upstream's referrers API, whose pages are followed
// (same origin, at most Options.MaxPages) and decoded as they arrive into one list of at most
// Options.MaxReferrersEntries descriptors read from at most Options.MaxReferrersBytes bytes across all
// pages; exceeding either is an Invalid error, and no partial list is returned.
//
// An upstream without the API (a 404 other than NAME_UNKNOWN/MANIFEST_UNKNOWN, 400, 405, 406, or a 200
// that is not an OCI image index) is served from the referrers tag schema instead: the image index
// tagged <alg>-<hex> (the spec's truncated tag and, when different, the untruncated one), where a
// missing tag or a tag that is not an index means no referrers, and the artifactType filter of rawQuery
// is applied here. That finding is remembered: later calls go straight to the tag schema, and the API is
// probed again (by one caller) once Options.ReprobeInterval has passed.
//
// A 404 NAME_UNKNOWN/MANIFEST_UNKNOWN from the API is a NotFound error. Upstream failures (401, 429,
// 5xx, network) are returned as errors, never papered over with an empty list.
func (c *Client) ListReferrers(ctx context.Context, repo, ref, rawQuery string) (*ReferrersResult, error) {
	urepo := c.UpstreamRepo(repo)
	if err := checkRepo(urepo); err != nil {
		return nil, err
	}
	subject, err := digest.Parse(ref)
	if err != nil {
		return nil, newError(Invalid, "referrers subject %q is not a digest: %v", ref, err)
	}
	if c.skipReferrersAPI() {
		return c.referrersByTag(ctx, urepo, subject, rawQuery)
	}
	res, err := c.referrersAPI(ctx, urepo, subject, rawQuery)
	if errors.Is(err, errReferrersUnsupported) {
		c.setReferrersCapability(CapabilityUnsupported)
		return c.referrersByTag(ctx, urepo, subject, rawQuery)
	}
	if err != nil {
		return nil, err
	}
	c.setReferrersCapability(CapabilitySupported)
	return res, nil
}

// ReferrersCapability reports what the client knows of the upstream's referrers API.
func (c *Client) ReferrersCapability() Capability { return Capability(c.refState.Load()) }

// skipReferrersAPI reports whether to go straight to the tag schema: the API was found unsupported
// less than ReprobeInterval ago, or another caller is re-probing it right now.
func (c *Client) skipReferrersAPI() bool {
	if Capability(c.refState.Load()) != CapabilityUnsupported {
		return false
	}
	last := c.refProbe.Load()
	now := c.opts.Now().UnixNano()
	if now-last < int64(c.opts.ReprobeInterval) {
		return true
	}
	// One caller wins the re-probe; the others keep using the tag schema meanwhile.
	return !c.refProbe.CompareAndSwap(last, now)
}

func (c *Client) setReferrersCapability(cp Capability) {
	if cp == CapabilityUnsupported {
		c.refProbe.Store(c.opts.Now().UnixNano())
	}
	if old := Capability(c.refState.Swap(int32(cp))); old != cp {
		c.log.Info("upstream referrers API capability", "supported", cp == CapabilitySupported)
	}
}

// referrersAPI reads every page of the referrers API into one list bounded by Options.MaxReferrersBytes
// and MaxReferrersEntries. errReferrersUnsupported when the first page says the API is missing.
func (c *Client) referrersAPI(ctx context.Context, urepo string, subject digest.Digest, rawQuery string) (*ReferrersResult, error) {
	u := c.repoURL(urepo, "referrers", subject.String())
	u.RawQuery = rawQuery
	acc := c.newIndexAccumulator()
	res := &ReferrersResult{Source: SourceAPI}
	hdr := http.Header{"Accept": {ocispec.MediaTypeImageIndex}}
	err := c.paginate(ctx, u, hdr, pullScope(urepo), func(page int, resp *http.Response) error {
		if err := referrersPageStatus(page, resp); err != nil {
			return err
		}
		where := fmt.Sprintf("GET %s (page %d)", redactedPath(resp), page+1)
		notIndex := func(err error) error {
			if page == 0 {
				return errReferrersUnsupported
			}
			return &Error{Kind: Invalid, Status: resp.StatusCode, Err: fmt.Errorf("%s: %w", where, err)}
		}
		if ct := contentType(resp); ct != ocispec.MediaTypeImageIndex {
			return notIndex(fmt.Errorf("Content-Type %q is not an image index", ct))
		}
		filters := parseFilters(resp.Header.Values("OCI-Filters-Applied"))
		if err := acc.decode(resp, where); err != nil {
			var fe *formatError
			if errors.As(err, &fe) {
				return notIndex(err)
			}
			return err
		}
		if page == 0 {
			res.FiltersApplied = filters
		} else {
			res.FiltersApplied = slices.DeleteFunc(res.FiltersApplied, func(f string) bool { return !slices.Contains(filters, f) })
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Index, res.Dropped = acc.index(), acc.dropped
	return res, nil
}

// referrersPageStatus checks the status of referrers page number page: nil for 200,
// errReferrersUnsupported for a first page that says the API is missing, else the upstream's error.
func referrersPageStatus(page int, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		e := statusError(resp)
		if e.Code == "NAME_UNKNOWN" || e.Code == "MANIFEST_UNKNOWN" || page > 0 {
			return e
		}
		return errReferrersUnsupported
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotAcceptable:
		if page > 0 {
			return statusError(resp)
		}
		return errReferrersUnsupported
	}
	return statusError(resp)
}

// referrersByTag reads the referrers tag schema: the image index tagged with the subject's referrers
// tag(s), filtered by rawQuery's artifactType.
func (c *Client) referrersByTag(ctx context.Context, urepo string, subject digest.Digest, rawQuery string) (*ReferrersResult, error) {
	acc := c.newIndexAccumulator()
	for _, tag := range referrersTags(subject) {
		m, err := c.getManifest(ctx, urepo, tag)
		if err != nil {
			var e *Error
			switch {
			case errors.As(err, &e) && (e.Kind == NotFound || e.Status == http.StatusBadRequest):
				continue // no such tag (or, untruncated, no tag that long): no referrers there
			case errors.Is(err, errTooLarge):
				return nil, err
			case errors.As(err, &e) && e.Status == http.StatusOK && (e.Kind == Invalid || e.Kind == Unsupported):
				c.log.Debug("referrers tag is not a usable manifest; taken as empty", "repository", urepo, "tag", tag, "err", err)
				continue
			}
			return nil, err
		}
		if m.MediaType != ocispec.MediaTypeImageIndex {
			continue
		}
		if err := acc.decodeBody(m.Body, "referrers tag "+tag); err != nil {
			var fe *formatError
			if errors.As(err, &fe) {
				continue // not an index: no referrers there
			}
			return nil, err
		}
	}
	res := &ReferrersResult{Source: SourceTagSchema}
	if q, _ := url.ParseQuery(rawQuery); len(nonEmpty(q["artifactType"])) > 0 {
		types := nonEmpty(q["artifactType"])
		acc.keep(func(d ocispec.Descriptor) bool { return slices.Contains(types, d.ArtifactType) })
		res.FiltersApplied = []string{"artifactType"}
	}
	res.Index, res.Dropped = acc.index(), acc.dropped
	return res, nil
}

// referrersTags returns the tag-schema tags of subject: the spec's truncated form (algorithm cut at 32,
// encoded part at 64, characters not allowed in tags replaced by '-') and, when it differs (sha512),
// the untruncated form some clients write.
func referrersTags(subject digest.Digest) []string {
	alg, enc := subject.Algorithm().String(), subject.Encoded()
	truncated := sanitizeTag(alg[:min(len(alg), 32)]) + "-" + sanitizeTag(enc[:min(len(enc), 64)])
	full := sanitizeTag(alg) + "-" + sanitizeTag(enc)
	if full == truncated {
		return []string{truncated}
	}
	return []string{truncated, full}
}

func sanitizeTag(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// indexAccumulator merges descriptors from several pages or tags into one list bounded in bytes read
// (budget) and descriptors kept (maxEntries): invalid ones are counted and left out, duplicates (by
// digest) keep their first occurrence.
type indexAccumulator struct {
	descs      []ocispec.Descriptor
	seen       map[digest.Digest]bool
	dropped    int
	budget     *budget
	maxEntries int
}

func (c *Client) newIndexAccumulator() *indexAccumulator {
	return &indexAccumulator{descs: []ocispec.Descriptor{}, seen: map[digest.Digest]bool{},
		budget: newBudget(c.opts.MaxReferrersBytes, "referrers list"), maxEntries: c.opts.MaxReferrersEntries}
}

// decode streams the image index of resp's body into the list (see decodeIndex). where names the page
// in errors. Exceeding a bound is an Invalid error wrapping errTooLarge; a broken body is Unavailable; a
// body that is not an index is a *formatError, and the descriptors it added are taken back.
func (a *indexAccumulator) decode(resp *http.Response, where string) error {
	br, err := a.budget.reader(resp)
	if err != nil {
		return &Error{Kind: Invalid, Status: resp.StatusCode, Err: fmt.Errorf("%s: %w", where, err)}
	}
	err = a.decodeFrom(br)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTooLarge):
		return &Error{Kind: Invalid, Status: resp.StatusCode, Err: fmt.Errorf("%s: %w", where, err)}
	case br.readErr != nil:
		return &Error{Kind: Unavailable, Status: resp.StatusCode, Err: fmt.Errorf("%s: reading body: %w", where, br.readErr)}
	}
	return err
}

// decodeBody is decode for a body already read (a tag-schema index), counted against the same budget.
func (a *indexAccumulator) decodeBody(body []byte, where string) error {
	if int64(len(body)) > a.budget.left {
		return &Error{Kind: Invalid, Status: http.StatusOK, Err: fmt.Errorf("%s: %w", where, a.budget.tooLarge())}
	}
	a.budget.left -= int64(len(body))
	err := a.decodeFrom(bytes.NewReader(body))
	if errors.Is(err, errTooLarge) {
		return &Error{Kind: Invalid, Status: http.StatusOK, Err: fmt.Errorf("%s: %w", where, err)}
	}
	return err
}

func (a *indexAccumulator) decodeFrom(r io.Reader) error {
	mark, dropped := len(a.descs), a.dropped
	err := decodeIndex(r, a.add)
	var fe *formatError
	if errors.As(err, &fe) { // take back what a document that turned out not to be an index added
		for _, d := range a.descs[mark:] {
			delete(a.seen, d.Digest)
		}
		a.descs, a.dropped = a.descs[:mark], dropped
	}
	return err
}

// add keeps one raw manifests entry when it is a valid descriptor not seen before.
func (a *indexAccumulator) add(raw json.RawMessage) error {
	var d ocispec.Descriptor
	if json.Unmarshal(raw, &d) != nil || d.Digest.Validate() != nil || d.Size < 0 {
		a.dropped++
		return nil
	}
	if a.seen[d.Digest] {
		return nil
	}
	if len(a.descs) >= a.maxEntries {
		return fmt.Errorf("%w: the referrers list has more than %d descriptors", errTooLarge, a.maxEntries)
	}
	a.seen[d.Digest] = true
	a.descs = append(a.descs, d)
	return nil
}

func (a *indexAccumulator) keep(f func(ocispec.Descriptor) bool) {
	a.descs = slices.DeleteFunc(a.descs, func(d ocispec.Descriptor) bool { return !f(d) })
}

func (a *indexAccumulator) index() ocispec.Index {
	return ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: a.descs,
	}
}

// parseFilters splits OCI-Filters-Applied values ("artifactType, other") into distinct names.
func parseFilters(values []string) []string {
	var out []string
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func nonEmpty(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
