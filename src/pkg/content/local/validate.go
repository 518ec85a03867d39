package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/reference"
)

// Manifest media types the registry accepts.
const (
	MediaTypeOCIManifest        = ocispec.MediaTypeImageManifest
	MediaTypeOCIIndex           = ocispec.MediaTypeImageIndex
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// IsManifestMediaType reports whether mt is one of the manifest media types the registry accepts.
func IsManifestMediaType(mt string) bool {
	switch mt {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList:
		return true
	}
	return false
}

func isIndexMediaType(mt string) bool {
	return mt == MediaTypeOCIIndex || mt == MediaTypeDockerManifestList
}

// parseRef splits a manifest reference into a tag or a digest. A reference with a colon is a digest (tags
// cannot contain one).
func parseRef(ref string) (tag string, d digest.Digest, err error) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == ':' {
			d, err = parseDigest(ref)
			return "", d, err
		}
	}
	if err := reference.ValidateTag(ref); err != nil {
		return "", "", errcode.ErrManifestInvalid.WithMessage("%s", err.Error())
	}
	return ref, "", nil
}

// descriptor is the part of an OCI/Docker descriptor the registry checks.
type descriptor struct {
	MediaType string   `json:"mediaType"`
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	URLs      []string `json:"urls"`
}

// manifestDoc is the union of the fields of image manifests and indexes the registry reads.
type manifestDoc struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// parsedManifest is a validated manifest and what gets recorded about it.
type parsedManifest struct {
	mediaType    string
	artifactType string
	subject      digest.Digest
	annotations  map[string]string
	blobs        []digest.Digest         // config and layers that must be linked in the repository
	children     []digest.Digest         // manifests an index lists, which must exist in the repository
	sizes        map[digest.Digest]int64 // the size the descriptors give each of blobs and children
}

// parseManifest checks that body is a manifest of an accepted media type consistent with contentType
// (the request's Content-Type without parameters; "" when the client sent none) and extracts what the
// registry records. It does not look at the repository.
func parseManifest(contentType string, body []byte) (*parsedManifest, error) {
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errcode.ErrManifestInvalid.WithMessage("manifest is not valid JSON: %v", err)
	}
	if key, err := duplicateKey(body); err != nil || key != "" {
		return nil, errcode.ErrManifestInvalid.WithMessage("manifest has the key %q twice in one object", key)
	}
	mt, err := effectiveMediaType(contentType, doc.MediaType)
	if err != nil {
		return nil, err
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return nil, errcode.ErrManifestInvalid.WithMessage("schemaVersion must be 2")
	}
	p := &parsedManifest{mediaType: mt, annotations: doc.Annotations, sizes: map[digest.Digest]int64{}}
	oci := mt == MediaTypeOCIManifest || mt == MediaTypeOCIIndex
	if isIndexMediaType(mt) {
		if doc.Config != nil || doc.Layers != nil {
			return nil, errcode.ErrManifestInvalid.WithMessage("an index has no config or layers")
		}
		for i, m := range doc.Manifests {
			d, err := p.checkDescriptor(fmt.Sprintf("manifests[%d]", i), m)
			if err != nil {
				return nil, err
			}
			p.children = append(p.children, d)
		}
		p.artifactType = doc.ArtifactType // an index without artifactType has none
	} else {
		if doc.Manifests != nil {
			return nil, errcode.ErrManifestInvalid.WithMessage("an image manifest has no manifests list")
		}
		if doc.Config == nil {
			return nil, errcode.ErrManifestInvalid.WithMessage("config is required")
		}
		d, err := p.checkDescriptor("config", *doc.Config)
		if err != nil {
			return nil, err
		}
		p.blobs = append(p.blobs, d)
		for i, l := range doc.Layers {
			d, err := p.checkDescriptor(fmt.Sprintf("layers[%d]", i), l)
			if err != nil {
				return nil, err
			}
			// A layer with URLs (non-distributable, foreign) is fetched from elsewhere: it need not be here.
			if len(l.URLs) == 0 {
				p.blobs = append(p.blobs, d)
			}
		}
		p.artifactType = doc.ArtifactType
		if p.artifactType == "" {
			p.artifactType = doc.Config.MediaType
		}
	}
	if !oci {
		// artifactType and subject are OCI fields: a Docker manifest carrying them is stored as pushed,
		// but it is neither typed nor indexed as a referrer by them.
		p.artifactType = ""
		if doc.Config != nil {
			p.artifactType = doc.Config.MediaType
		}
		return p, nil
	}
	if doc.Subject != nil {
		d, err := checkDescriptor("subject", *doc.Subject)
		if err != nil {
			return nil, err
		}
		p.subject = d
	}
	return p, nil
}

// effectiveMediaType decides the manifest's media type from the Content-Type and the body's mediaType.
func effectiveMediaType(contentType, bodyType string) (string, error) {
	switch {
	case contentType == "" || contentType == "application/json":
		// No usable Content-Type: the body must say what it is.
		if !IsManifestMediaType(bodyType) {
			return "", errcode.ErrManifestInvalid.WithMessage("unsupported manifest media type %q", bodyType)
		}
		return bodyType, nil
	case !IsManifestMediaType(contentType):
		return "", errcode.ErrManifestInvalid.WithMessage("unsupported manifest media type %q", contentType)
	case bodyType == contentType:
		return contentType, nil
	case bodyType == "" && (contentType == MediaTypeOCIManifest || contentType == MediaTypeOCIIndex):
		return contentType, nil // mediaType is optional in OCI manifests
	default:
		return "", errcode.ErrManifestInvalid.WithMessage("manifest mediaType %q does not match Content-Type %q", bodyType, contentType)
	}
}

// checkDescriptor checks a config, layer or index entry and records its size, which every descriptor of
// one digest must agree on.
func (p *parsedManifest) checkDescriptor(field string, d descriptor) (digest.Digest, error) {
	dg, err := checkDescriptor(field, d)
	if err != nil {
		return "", err
	}
	if size, seen := p.sizes[dg]; seen && size != d.Size {
		return "", errcode.ErrManifestInvalid.WithMessage("%s: size %d, but another descriptor of %s says %d", field, d.Size, dg, size)
	}
	p.sizes[dg] = d.Size
	return dg, nil
}

func checkDescriptor(field string, d descriptor) (digest.Digest, error) {
	dg, err := digest.Parse(d.Digest)
	if err != nil {
		return "", errcode.ErrManifestInvalid.WithMessage("%s: invalid digest %q", field, d.Digest)
	}
	if d.Size < 0 {
		return "", errcode.ErrManifestInvalid.WithMessage("%s: negative size", field)
	}
	return dg, nil
}

// checkReferences verifies that every blob p needs is linked in repo and every manifest it lists is stored
// in repo, each with the size its descriptor gives (MANIFEST_INVALID otherwise: a client trusting the
// descriptor would read a different length); with sparse, only the config (p.blobs[0] of an image
// manifest) is required. The subject is not checked: it may be pushed later.
func (s *Service) checkReferences(ctx context.Context, repo string, p *parsedManifest, sparse bool) error {
	for i, d := range p.blobs {
		size, err := s.links.BlobLinked(ctx, repo, d.String())
		if err := p.checkReference("blob", d, size, err, sparse && i > 0); err != nil {
			return err
		}
	}
	for _, d := range p.children {
		var size int64
		a, err := s.artifacts.GetArtifact(ctx, repo, d.String())
		if err == nil {
			size = a.Size
		} else if errors.Is(err, meta.ErrNotFound) {
			// An index may also list plain blobs (rare, but valid): accept a linked blob.
			size, err = s.links.BlobLinked(ctx, repo, d.String())
		}
		if err := p.checkReference("manifest", d, size, err, sparse); err != nil {
			return err
		}
	}
	return nil
}

// checkReference judges one reference d of p (a "blob" or a "manifest") as looked up in the repository:
// found with size, or err. Absent is skipped when optional, else MANIFEST_BLOB_UNKNOWN; another error is
// wrapped; a found size is checked by checkSize.
func (p *parsedManifest) checkReference(kind string, d digest.Digest, size int64, err error, optional bool) error {
	switch {
	case err == nil:
		return p.checkSize(d, size)
	case isNotFound(err) && optional:
		return nil
	case isNotFound(err):
		return errcode.ErrManifestBlobUnknown.WithMessage("%s %s unknown to repository", kind, d).
			WithDetail(map[string]string{"digest": d.String()})
	}
	return fmt.Errorf("checking %s %s: %w", kind, d, err)
}

// checkSize compares the size the manifest gives d with the stored size.
func (p *parsedManifest) checkSize(d digest.Digest, stored int64) error {
	if want := p.sizes[d]; want != stored {
		return errcode.ErrManifestInvalid.WithMessage("the descriptor of %s gives size %d, but the stored content has %d bytes", d, want, stored).
			WithDetail(map[string]any{"digest": d.String(), "size": want, "stored": stored})
	}
	return nil
}
