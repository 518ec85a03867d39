package reference

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// Kind is the kind of registry API route a path names.
type Kind uint8

// Route kinds. The zero Kind is KindUnknown, which ParseV2Path never returns without an error.
const (
	KindUnknown     Kind = iota
	KindBase             // /v2/
	KindCatalog          // /v2/_catalog
	KindTags             // /v2/<name>/tags/list
	KindManifest         // /v2/<name>/manifests/<tag or digest>
	KindBlob             // /v2/<name>/blobs/<digest>
	KindUploadStart      // /v2/<name>/blobs/uploads/ (trailing slash optional)
	KindUpload           // /v2/<name>/blobs/uploads/<id>
	KindReferrers        // /v2/<name>/referrers/<digest>
)

var kindNames = [...]string{"unknown", "base", "catalog", "tags", "manifest", "blob", "upload_start", "upload", "referrers"}

// String returns a short lower-case name, fit for a metrics label.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Route is a parsed /v2/ path. Its strings are substrings of the parsed path.
type Route struct {
	Kind Kind
	// Name is the repository name; empty for KindBase and KindCatalog.
	Name string
	// Tag is set for a manifest addressed by tag.
	Tag string
	// Digest is set for a manifest addressed by digest, a blob and referrers.
	Digest digest.Digest
	// UploadID is set for KindUpload.
	UploadID string
}

// Reference returns the manifest reference as given: the tag or the digest.
func (r Route) Reference() string {
	if r.Tag != "" {
		return r.Tag
	}
	return string(r.Digest)
}

// Path returns the canonical path of the route: ParseV2Path(r.Path()) returns r again. The base route is
// "/v2/" and the upload start route ends with a slash.
func (r Route) Path() string {
	switch r.Kind {
	case KindBase:
		return "/v2/"
	case KindCatalog:
		return "/v2/_catalog"
	case KindTags:
		return "/v2/" + r.Name + "/tags/list"
	case KindManifest:
		return "/v2/" + r.Name + "/manifests/" + r.Reference()
	case KindBlob:
		return "/v2/" + r.Name + "/blobs/" + string(r.Digest)
	case KindUploadStart:
		return "/v2/" + r.Name + "/blobs/uploads/"
	case KindUpload:
		return "/v2/" + r.Name + "/blobs/uploads/" + r.UploadID
	case KindReferrers:
		return "/v2/" + r.Name + "/referrers/" + string(r.Digest)
	}
	return ""
}

// ParseV2Path parses a request's URL path (decoded, as in url.URL.Path). The route is decided by the
// path's last segments, so a repository name may itself contain segments such as "manifests" or
// "blobs": /v2/a/blobs/manifests/x is the manifest x of repository a/blobs. "/v2" is taken as the base
// route, and "/v2/<name>/blobs/uploads" (no trailing slash) as the upload start route.
//
// Errors: a path that is no route wraps ErrNotFound; otherwise the name is checked first (ErrNameInvalid,
// or ErrNameNoProject for a one-component name), then the reference: a manifest reference containing ':'
// must be a digest (ErrDigestInvalid / ErrDigestUnsupported), any other must be a tag (ErrTagInvalid);
// blob and referrers digests the same; upload IDs ErrUploadIDInvalid.
func ParseV2Path(path string) (Route, error) {
	const prefix = "/v2/"
	if len(path) < len(prefix) || path[:len(prefix)] != prefix {
		if path == "/v2" {
			return Route{Kind: KindBase}, nil
		}
		return Route{}, errorf(ErrNotFound, path)
	}
	rest := path[len(prefix):]
	switch rest {
	case "":
		return Route{Kind: KindBase}, nil
	case "_catalog":
		return Route{Kind: KindCatalog}, nil
	}

	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 {
		return Route{}, errorf(ErrNotFound, path)
	}
	last, before := rest[slash+1:], rest[:slash]
	if last == "" {
		// Only the upload start route may end with a slash.
		name, ok := strings.CutSuffix(before, "/blobs/uploads")
		if !ok || name == "" {
			return Route{}, errorf(ErrNotFound, path)
		}
		return withName(Route{Kind: KindUploadStart, Name: name})
	}
	slash = strings.LastIndexByte(before, '/')
	if slash <= 0 { // no name, or an empty one
		return Route{}, errorf(ErrNotFound, path)
	}
	marker, name := before[slash+1:], before[:slash]
	switch marker {
	case "manifests":
		return manifestRoute(name, last)
	case "blobs":
		if last == "uploads" {
			return withName(Route{Kind: KindUploadStart, Name: name})
		}
		return withDigest(Route{Kind: KindBlob, Name: name}, last)
	case "referrers":
		return withDigest(Route{Kind: KindReferrers, Name: name}, last)
	case "tags":
		if last != "list" {
			return Route{}, errorf(ErrNotFound, path)
		}
		return withName(Route{Kind: KindTags, Name: name})
	case "uploads":
		return uploadRoute(path, name, last)
	}
	return Route{}, errorf(ErrNotFound, path)
}

// manifestRoute is the route of /v2/<name>/manifests/<ref>: ref is a digest when it holds a colon,
// else a tag.
func manifestRoute(name, ref string) (Route, error) {
	r, err := withName(Route{Kind: KindManifest, Name: name})
	if err != nil {
		return Route{}, err
	}
	if strings.IndexByte(ref, ':') >= 0 {
		if !validDigest(ref) {
			return Route{}, digestError(ref)
		}
		r.Digest = digest.Digest(ref)
		return r, nil
	}
	if !validTag(ref) {
		return Route{}, errorf(ErrTagInvalid, ref)
	}
	r.Tag = ref
	return r, nil
}

// uploadRoute is the route of /v2/<name>/blobs/uploads/<id>; nameBlobs is "<name>/blobs".
func uploadRoute(path, nameBlobs, id string) (Route, error) {
	name, ok := strings.CutSuffix(nameBlobs, "/blobs")
	if !ok || name == "" {
		return Route{}, errorf(ErrNotFound, path)
	}
	r, err := withName(Route{Kind: KindUpload, Name: name})
	if err != nil {
		return Route{}, err
	}
	if !validUploadID(id) {
		return Route{}, errorf(ErrUploadIDInvalid, id)
	}
	r.UploadID = id
	return r, nil
}

// withName returns r if its name is valid.
func withName(r Route) (Route, error) {
	if n, ok := scanName(r.Name); !ok || n < 2 {
		return Route{}, ValidateName(r.Name)
	}
	return r, nil
}

// withDigest returns r with digest d if both its name and d are valid.
func withDigest(r Route, d string) (Route, error) {
	r, err := withName(r)
	if err != nil {
		return Route{}, err
	}
	if !validDigest(d) {
		return Route{}, digestError(d)
	}
	r.Digest = digest.Digest(d)
	return r, nil
}

// MaxUploadIDLength is the longest upload ID ParseV2Path accepts.
const MaxUploadIDLength = 128

// validUploadID accepts 1 to MaxUploadIDLength characters of [A-Za-z0-9._=-] not starting with '.':
// the forms of random, hex, base64url and UUID identifiers. The store checks its own format on top.
func validUploadID(id string) bool {
	if len(id) == 0 || len(id) > MaxUploadIDLength || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '.' || c == '_' || c == '=' || c == '-') {
			return false
		}
	}
	return true
}
