package referrers

import (
	"context"
	"encoding/json"
	"maps"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// manifestMediaTypes are the media types a referrer descriptor may carry: a referrer is a manifest or
// an index (the spec), and registries still serve Docker types.
var manifestMediaTypes = map[string]bool{
	ocispec.MediaTypeImageManifest:                              true,
	ocispec.MediaTypeImageIndex:                                 true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

// validDescriptor reports whether an upstream descriptor can be served: a manifest media type, a
// well-formed sha256/sha512 digest and a size within the manifest limit.
func validDescriptor(d ocispec.Descriptor, maxSize int64) bool {
	if !manifestMediaTypes[d.MediaType] {
		return false
	}
	if d.Size <= 0 || d.Size > maxSize {
		return false
	}
	if err := d.Digest.Validate(); err != nil {
		return false
	}
	alg := d.Digest.Algorithm()
	return alg == digest.SHA256 || alg == digest.SHA512
}

// clean keeps the fields the spec defines for a referrers entry and drops everything else an upstream
// may have added (urls, platform, data), so clients see the same shape from every upstream.
func clean(d ocispec.Descriptor) ocispec.Descriptor {
	out := ocispec.Descriptor{
		MediaType:    d.MediaType,
		Digest:       d.Digest,
		Size:         d.Size,
		ArtifactType: d.ArtifactType,
	}
	if len(d.Annotations) > 0 {
		out.Annotations = d.Annotations
	}
	return out
}

// doubtful reports whether an upstream descriptor's artifactType cannot be right. The spec makes an image
// manifest's artifactType its artifactType field, else its config media type, so every OCI image manifest
// has one; and a manifest whose config is the empty descriptor must carry an artifactType (image-spec),
// so "application/vnd.oci.empty.v1+json" is what an upstream reports when it reads config.mediaType
// instead (go-containerregistry does: cosign v3 bundles would be listed under the wrong type). Indexes
// may lack an artifactType and Docker manifests have none of their own: they are left as sent.
func doubtful(d ocispec.Descriptor) bool {
	return d.MediaType == ocispec.MediaTypeImageManifest &&
		(d.ArtifactType == "" || d.ArtifactType == ocispec.MediaTypeEmptyJSON)
}

// Bounds on repairing doubtful descriptors during one refresh.
const (
	maxRepairs        = 256 // manifests fetched at most; further doubtful entries are kept as sent
	repairConcurrency = 8
)

// repair replaces doubtful descriptors of list by what the referrer manifests themselves say
// (artifactType, annotations), reading each manifest from the upstream. A descriptor prev (the answer
// being replaced) already repaired is reused: a manifest never changes under its digest. A manifest whose
// subject is not subject is not a referrer of it and is dropped (counted in the second result). A
// manifest that cannot be read leaves its descriptor as sent; the next refresh tries again.
func repair(ctx context.Context, l Lister, repo string, subject digest.Digest, list, prev []ocispec.Descriptor) ([]ocispec.Descriptor, int) {
	known := make(map[digest.Digest]ocispec.Descriptor, len(prev))
	for _, d := range prev {
		if !doubtful(d) {
			known[d.Digest] = d
		}
	}
	out := make([]ocispec.Descriptor, len(list))
	drop := make([]bool, len(list))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(repairConcurrency)
	fetches := 0
	for i, d := range list {
		out[i] = d
		if !doubtful(d) {
			continue
		}
		if k, ok := known[d.Digest]; ok {
			out[i] = k
			continue
		}
		if fetches == maxRepairs {
			continue
		}
		fetches++
		g.Go(func() error { // each goroutine writes only its own index
			fixed, ok := describe(gctx, l, repo, subject, d)
			out[i], drop[i] = fixed, !ok
			return nil
		})
	}
	_ = g.Wait()
	kept := out[:0]
	dropped := 0
	for i, d := range out {
		if drop[i] {
			dropped++
			continue
		}
		kept = append(kept, d)
	}
	return kept, dropped
}

// describe reads the manifest d names and returns its descriptor per the spec. ok is false when the
// manifest does not refer to subject. On a read or parse failure d is returned unchanged.
func describe(ctx context.Context, l Lister, repo string, subject digest.Digest, d ocispec.Descriptor) (ocispec.Descriptor, bool) {
	m, err := l.GetManifest(ctx, repo, d.Digest.String())
	if err != nil || m.Digest != d.Digest {
		return d, true
	}
	var doc struct {
		ArtifactType string `json:"artifactType"`
		Config       *struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Subject *struct {
			Digest digest.Digest `json:"digest"`
		} `json:"subject"`
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(m.Body, &doc) != nil {
		return d, true
	}
	if doc.Subject == nil || doc.Subject.Digest != subject {
		return d, false
	}
	out := ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: int64(len(m.Body)), ArtifactType: doc.ArtifactType}
	if out.ArtifactType == "" && doc.Config != nil {
		out.ArtifactType = doc.Config.MediaType
	}
	if len(doc.Annotations) > 0 {
		out.Annotations = maps.Clone(doc.Annotations)
	}
	return out, true
}
