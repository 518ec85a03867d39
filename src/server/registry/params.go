package registry

import (
	"errors"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/reference"
)

// routeError turns a reference.ParseV2Path error into the client error: unknown paths 404 NOT_FOUND, bad
// names 400 NAME_INVALID, bad digests 400 DIGEST_INVALID, unknown upload IDs 404 BLOB_UPLOAD_UNKNOWN, and
// a malformed tag 400 MANIFEST_INVALID for every method. The distribution spec has no code of its own for
// a malformed tag (TAG_INVALID was Docker's, for a tag that did not match the pushed manifest); a
// malformed reference is a client error, as for names and digests, not an absent manifest, and
// MANIFEST_INVALID is what a push of it already answers
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes).
func routeError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, reference.ErrNameInvalid):
		return errcode.ErrNameInvalid.WithMessage("%s", msg)
	case errors.Is(err, reference.ErrDigestInvalid):
		return errcode.ErrDigestInvalid.WithMessage("%s", msg)
	case errors.Is(err, reference.ErrUploadIDInvalid):
		return errcode.ErrBlobUploadUnknown.WithMessage("%s", msg)
	case errors.Is(err, reference.ErrTagInvalid):
		return errcode.ErrManifestInvalid.WithMessage("%s", msg)
	}
	return errcode.ErrNotFound.WithMessage("%s", msg)
}

// byteRange is a satisfiable range of a blob: length bytes from start.
type byteRange struct {
	start, length int64
}

// parseRange interprets a Range request header for content of size bytes. ok is false when the whole
// content is to be sent: no header, a unit other than bytes, or several ranges (which a server may
// ignore). A single byte range that is malformed (e.g. "500-0") or unsatisfiable is RANGE_INVALID (416).
func parseRange(h string, size int64) (r byteRange, ok bool, err error) {
	v := strings.TrimSpace(h)
	if v == "" || len(v) < 6 || !strings.EqualFold(v[:6], "bytes=") || strings.Contains(v, ",") {
		return byteRange{}, false, nil
	}
	start, end, err := rangeBounds(v, size)
	if err != nil {
		return byteRange{}, false, errcode.ErrRangeInvalid.WithMessage("range %q not satisfiable for %d bytes", h, size)
	}
	return byteRange{start: start, length: end - start + 1}, true, nil
}

// parseContentRange parses the Content-Range of an upload chunk, "<start>-<end>" (inclusive). A malformed
// value is RANGE_INVALID (416), as the spec asks.
func parseContentRange(h string) (start, end int64, err error) {
	start, end, err = contentRangeBounds(strings.TrimSpace(h))
	if err != nil {
		return 0, 0, errcode.ErrRangeInvalid.WithMessage("invalid Content-Range %q", h)
	}
	return start, end, nil
}

// pagination is the n and last query parameters of a list request.
type pagination struct {
	n    int  // requested size (capped by the parser's maximum)
	hasN bool // whether n was given (n=0 asks for an empty page)
	last string
}

// parsePagination reads n (a non-negative integer, capped at maxN when maxN > 0) and last; a malformed
// value is PAGINATION_NUMBER_INVALID (400).
func parsePagination(q url.Values, maxN int) (pagination, error) {
	n, last, err := paginationParams(q, maxN)
	if err != nil {
		return pagination{}, errcode.ErrPaginationInvalid.WithMessage("%s", err.Error())
	}
	return pagination{n: n, hasN: q.Get("n") != "", last: last}, nil
}

// parseDigest validates a digest query parameter (sha256 or sha512); anything else is DIGEST_INVALID.
func parseDigest(v string) (digest.Digest, error) {
	d, err := reference.ParseDigest(v)
	if err != nil {
		return "", errcode.ErrDigestInvalid.WithMessage("%s", err.Error())
	}
	return d, nil
}

// referrersQuery is the one place that decides which query parameters of a referrers request reach the
// domain, and so a cache key and an upstream: artifactType (one value), n (absent or 0: the service's
// default; the service caps it, content.PageRule) and last. Any other parameter is ignored. artifactType given more than once is
// 400 BAD_REQUEST: the distribution spec defines a single artifactType filter
// (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers), and
// answering for the first value only while the client asked for several would be a silently wrong list.
func referrersQuery(q url.Values) (content.ReferrersQuery, error) {
	if len(q["artifactType"]) > 1 {
		return content.ReferrersQuery{}, errcode.ErrBadRequest.WithMessage("artifactType given %d times; one filter value is supported", len(q["artifactType"]))
	}
	p, err := parsePagination(q, 0)
	if err != nil {
		return content.ReferrersQuery{}, err
	}
	rq := content.ReferrersQuery{ArtifactType: q.Get("artifactType"), Last: p.last}
	if p.hasN && p.n > 0 {
		rq.N = p.n
	}
	return rq, nil
}
