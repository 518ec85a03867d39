package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/mediatype"
)

// Manifest media types.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// manifestAccept is the Accept header of manifest requests.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifest, MediaTypeDockerManifestList,
}, ", ")

func knownManifestType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList:
		return true
	}
	return false
}

// Descriptor names upstream content: media type, digest and size.
type Descriptor struct {
	MediaType string
	Digest    digest.Digest
	Size      int64
}

// Manifest is a manifest's exact bytes with its media type and digest.
type Manifest struct {
	MediaType string
	Digest    digest.Digest
	Body      []byte
}

// ManifestExists asks the upstream for ref (a tag or a digest) in repo with HEAD and returns the
// manifest's media type, digest (Docker-Content-Digest) and size. When the upstream's HEAD answer lacks
// a usable digest or size, the manifest is fetched (GetManifest) to learn them. A digest header that
// contradicts a digest ref is an Invalid error.
func (c *Client) ManifestExists(ctx context.Context, repo, ref string) (Descriptor, error) {
	urepo := c.UpstreamRepo(repo)
	if err := checkRepo(urepo); err != nil {
		return Descriptor{}, err
	}
	if err := checkRef(ref); err != nil {
		return Descriptor{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodHead, c.repoURL(urepo, "manifests", ref), http.Header{"Accept": {manifestAccept}}, pullScope(urepo))
	if err != nil {
		return Descriptor{}, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return Descriptor{}, statusError(resp)
	}
	d, derr := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	mt := contentType(resp)
	if derr == nil && resp.ContentLength >= 0 && knownManifestType(mt) {
		if want, err := digest.Parse(ref); err == nil && want != d {
			return Descriptor{}, &Error{Kind: Invalid, Status: resp.StatusCode,
				Err: fmt.Errorf("HEAD %s: digest header %s does not match the requested %s", redactedPath(resp), d, want)}
		}
		return Descriptor{MediaType: mt, Digest: d, Size: resp.ContentLength}, nil
	}
	m, err := c.GetManifest(ctx, repo, ref)
	if err != nil {
		return Descriptor{}, err
	}
	return Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Body))}, nil
}

// GetManifest fetches ref (a tag or a digest) in repo. The body is at most MaxMetadataSize bytes. When
// ref is a digest, the body must hash to it (else Invalid). Otherwise the digest is computed from the
// body; the upstream's Docker-Content-Digest is used instead only when the body hashes to it (so a
// sha512 upstream keeps its digests). The media type is the Content-Type when it is a manifest type,
// else the body's mediaType (or what its shape implies); a manifest of no known type is Invalid, a
// Docker schema 1 manifest Unsupported.
func (c *Client) GetManifest(ctx context.Context, repo, ref string) (*Manifest, error) {
	urepo := c.UpstreamRepo(repo)
	if err := checkRepo(urepo); err != nil {
		return nil, err
	}
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	return c.getManifest(ctx, urepo, ref)
}

// getManifest is GetManifest on an already-mapped repository name.
func (c *Client) getManifest(ctx context.Context, urepo, ref string) (*Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, c.repoURL(urepo, "manifests", ref), http.Header{"Accept": {manifestAccept}}, pullScope(urepo))
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	header := resp.Header.Get("Docker-Content-Digest")
	ct := contentType(resp)
	where := redactedPath(resp)
	body, err := readBody(resp)
	if err != nil {
		return nil, err
	}
	invalid := func(format string, args ...any) error {
		return &Error{Kind: Invalid, Status: http.StatusOK, Err: fmt.Errorf("GET "+where+": "+format, args...)}
	}

	var d digest.Digest
	if want, err := digest.Parse(ref); err == nil {
		if !want.Algorithm().Available() {
			return nil, invalid("digest algorithm %s is not available", want.Algorithm())
		}
		if got := want.Algorithm().FromBytes(body); got != want {
			return nil, invalid("body digest %s does not match the requested %s", got, want)
		}
		d = want
	} else {
		d = digest.FromBytes(body)
		if hd, err := digest.Parse(header); err == nil && hd != d {
			if hd.Algorithm().Available() && hd.Algorithm().FromBytes(body) == hd {
				d = hd
			} else {
				c.log.Warn("upstream digest header does not match the manifest body; using the computed digest",
					"repository", urepo, "reference", ref, "header", hd, "computed", d)
			}
		}
	}

	mt, err := manifestMediaType(ct, body)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Status = http.StatusOK
			e.Err = fmt.Errorf("GET %s: %w", where, e.Err)
			return nil, e
		}
		return nil, err
	}
	return &Manifest{MediaType: mt, Digest: d, Body: body}, nil
}

// manifestMediaType decides a manifest's media type from its Content-Type and body.
func manifestMediaType(ct string, body []byte) (string, error) {
	var m struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Config        json.RawMessage   `json:"config"`
		Layers        json.RawMessage   `json:"layers"`
		Manifests     json.RawMessage   `json:"manifests"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", newError(Invalid, "manifest body is not a JSON object: %v", err)
	}
	if ct == mediaTypeDockerSchema1 || ct == mediaTypeDockerSchema1JWS || m.SchemaVersion == 1 {
		return "", newError(Unsupported, "Docker schema 1 manifests are not supported")
	}
	if m.MediaType != "" && knownManifestType(ct) && m.MediaType != ct {
		return "", newError(Invalid, "manifest mediaType %q contradicts Content-Type %q", m.MediaType, ct)
	}
	switch {
	case knownManifestType(ct):
		return ct, nil
	case knownManifestType(m.MediaType):
		return m.MediaType, nil
	case m.MediaType == "" && m.SchemaVersion == 2 && len(m.Manifests) > 0:
		return ocispec.MediaTypeImageIndex, nil
	case m.MediaType == "" && m.SchemaVersion == 2 && len(m.Config) > 0:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", newError(Invalid, "not a manifest of a known type (Content-Type %q, mediaType %q)", ct, m.MediaType)
}

// contentType returns the response's media type without parameters, lower-cased.
func contentType(resp *http.Response) string { return mediatype.Of(resp.Header.Get("Content-Type")) }

// pullScope is the Bearer scope to read repo.
func pullScope(repo string) string { return "repository:" + repo + ":pull" }

// parseContentRange parses "bytes <start>-<end>/<total>"; total is -1 when "*".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	if tot == "*" {
		return start, -1, true
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	if err != nil || total < 0 {
		return 0, 0, false
	}
	return start, total, true
}
