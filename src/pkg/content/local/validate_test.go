package local

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// The digests and the OCI image manifest the parseManifest cases build on.
var (
	pmConfig  = digest.FromString("config").String()
	pmLayer   = digest.FromString("layer").String()
	pmChild   = digest.FromString("child").String()
	pmSubject = digest.FromString("subject").String()
	pmImage   = `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{"mediaType":"application/vnd.example.config","digest":"` +
		pmConfig + `","size":2},"layers":[{"mediaType":"l","digest":"` + pmLayer + `","size":5}],"subject":{"mediaType":"m","digest":"` + pmSubject +
		`","size":9},"annotations":{"k":"v"}}`
)

// parseCase is one parseManifest case: a body with its Content-Type, and the error code expected (zero:
// accepted) or the parse expected.
type parseCase struct {
	name        string
	contentType string
	body        string
	code        errcode.Code
	want        parsedManifest
}

// runParseCases runs parseManifest on each case.
func runParseCases(t *testing.T, cases []parseCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseManifest(tc.contentType, []byte(tc.body))
			if tc.code.Value != "" {
				require.True(t, errcode.IsCode(err, tc.code), "err = %v", err)
				return
			}
			require.NoError(t, err)
			if tc.want.sizes == nil {
				got.sizes = nil // checked where the case gives them
			}
			require.Equal(t, tc.want, *got)
		})
	}
}

func TestParseManifest(t *testing.T) {
	cfg, layer, child, subj, ociImage := pmConfig, pmLayer, pmChild, pmSubject, pmImage
	runParseCases(t, []parseCase{
		{name: "OCI image with subject", contentType: ocispec.MediaTypeImageManifest, body: ociImage, want: parsedManifest{
			mediaType: ocispec.MediaTypeImageManifest, artifactType: "application/vnd.example.config", subject: digest.Digest(subj),
			annotations: map[string]string{"k": "v"}, blobs: []digest.Digest{digest.Digest(cfg), digest.Digest(layer)},
			sizes: map[digest.Digest]int64{digest.Digest(cfg): 2, digest.Digest(layer): 5},
		}},
		{name: "no Content-Type: the body says", body: ociImage, want: parsedManifest{
			mediaType: ocispec.MediaTypeImageManifest, artifactType: "application/vnd.example.config", subject: digest.Digest(subj),
			annotations: map[string]string{"k": "v"}, blobs: []digest.Digest{digest.Digest(cfg), digest.Digest(layer)},
		}},
		{name: "artifactType wins over config", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"artifactType":"a/b","config":{"mediaType":"c","digest":"` + cfg + `","size":2}}`,
			want: parsedManifest{mediaType: ocispec.MediaTypeImageManifest, artifactType: "a/b", blobs: []digest.Digest{digest.Digest(cfg)}}},
		{name: "layer with URLs is not required", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"layers":[{"mediaType":"l","digest":"` + layer + `","size":1,"urls":["https://x"]}]}`,
			want: parsedManifest{mediaType: ocispec.MediaTypeImageManifest, artifactType: "c", blobs: []digest.Digest{digest.Digest(cfg)}}},
		{name: "index without artifactType has none", contentType: ocispec.MediaTypeImageIndex,
			body: `{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"` + child + `","size":1}],"subject":{"mediaType":"m","digest":"` + subj + `","size":1}}`,
			want: parsedManifest{mediaType: ocispec.MediaTypeImageIndex, subject: digest.Digest(subj), children: []digest.Digest{digest.Digest(child)}}},
		{name: "index with artifactType", contentType: ocispec.MediaTypeImageIndex,
			body: `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","artifactType":"x/y","manifests":[]}`,
			want: parsedManifest{mediaType: ocispec.MediaTypeImageIndex, artifactType: "x/y"}},
		{name: "docker manifest ignores subject", contentType: MediaTypeDockerManifest,
			body: `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":{"mediaType":"dc","digest":"` + cfg + `","size":2},"layers":[],"subject":{"mediaType":"m","digest":"` + subj + `","size":1}}`,
			want: parsedManifest{mediaType: MediaTypeDockerManifest, artifactType: "dc", blobs: []digest.Digest{digest.Digest(cfg)}}},
		{name: "one key in several objects is fine", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2,"annotations":{"mediaType":"x"}},"annotations":{"size":"y"}}`,
			want: parsedManifest{mediaType: ocispec.MediaTypeImageManifest, artifactType: "c", blobs: []digest.Digest{digest.Digest(cfg)},
				annotations: map[string]string{"size": "y"}}},
	})
}

func TestParseManifestRejects(t *testing.T) {
	cfg, layer, subj, ociImage := pmConfig, pmLayer, pmSubject, pmImage
	runParseCases(t, []parseCase{
		{name: "not JSON", contentType: ocispec.MediaTypeImageManifest, body: `{`, code: errcode.ErrManifestInvalid},
		{name: "array", contentType: ocispec.MediaTypeImageManifest, body: `[]`, code: errcode.ErrManifestInvalid},
		{name: "annotations of the wrong type", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"annotations":{"a":1}}`, code: errcode.ErrManifestInvalid},
		{name: "schema1", contentType: "application/vnd.docker.distribution.manifest.v1+json", body: `{"schemaVersion":1}`, code: errcode.ErrManifestInvalid},
		{name: "mismatch", contentType: ocispec.MediaTypeImageIndex, body: ociImage, code: errcode.ErrManifestInvalid},
		{name: "image without config", contentType: ocispec.MediaTypeImageManifest, body: `{"schemaVersion":2,"layers":[]}`, code: errcode.ErrManifestInvalid},
		{name: "image with manifests", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"manifests":[]}`, code: errcode.ErrManifestInvalid},
		{name: "index with config", contentType: ocispec.MediaTypeImageIndex,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"manifests":[]}`, code: errcode.ErrManifestInvalid},
		{name: "negative size", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":-1}}`, code: errcode.ErrManifestInvalid},
		{name: "bad subject digest", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":1},"subject":{"digest":"sha256:x","size":1}}`, code: errcode.ErrManifestInvalid},
		{name: "duplicate top-level key", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"schemaVersion":2}`, code: errcode.ErrManifestInvalid},
		{name: "duplicate digest in a descriptor", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + layer + `","digest":"` + cfg + `","size":2}}`, code: errcode.ErrManifestInvalid},
		{name: "duplicate subject", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"subject":{"mediaType":"m","digest":"` + subj +
				`","size":1},"subject":{"mediaType":"m","digest":"` + layer + `","size":1}}`, code: errcode.ErrManifestInvalid},
		{name: "duplicate annotation", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"annotations":{"a":"1","b":"2","a":"3"}}`,
			code: errcode.ErrManifestInvalid},
		{name: "duplicate key deep in an array", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"layers":[{"mediaType":"l","digest":"` + layer +
				`","size":5,"urls":[],"annotations":{"x":{"y":1,"y":2}}}]}`, code: errcode.ErrManifestInvalid},
		{name: "descriptors of one digest disagree on its size", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"layers":[{"mediaType":"l","digest":"` + cfg + `","size":3}]}`,
			code: errcode.ErrManifestInvalid},
		{name: "missing schemaVersion", contentType: ocispec.MediaTypeImageManifest,
			body: `{"config":{"mediaType":"c","digest":"` + cfg + `","size":1}}`, code: errcode.ErrManifestInvalid},
	})
}

// FuzzParseManifest is differential: whatever parseManifest accepts must decode into the image-spec
// types (ocispec.Manifest or ocispec.Index), and what Berth records (media type, artifactType, subject,
// annotations, the blobs and children it requires) must be what those types say. Every refusal is a
// client error.
func FuzzParseManifest(f *testing.F) {
	cfg := "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
	f.Add(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"c","digest":"`+cfg+`","size":1}}`))
	f.Add(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"artifactType":"a/b","config":{"mediaType":"c","digest":"`+cfg+
		`","size":1},"layers":[{"mediaType":"l","digest":"`+cfg+`","size":1,"urls":["https://x"]},{"mediaType":"l","digest":"`+cfg+
		`","size":1}],"subject":{"mediaType":"m","digest":"`+cfg+`","size":1},"annotations":{"k":"v"}}`))
	f.Add(ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add("", []byte(`{"schemaVersion":2,"mediaType":"`+ocispec.MediaTypeImageIndex+`","manifests":[{"mediaType":"m","digest":"`+cfg+`","size":3}]}`))
	f.Add(MediaTypeDockerManifest, []byte(`{"schemaVersion":2,"mediaType":"`+MediaTypeDockerManifest+`","config":{"mediaType":"dc","digest":"`+cfg+`","size":2},"layers":[]}`))
	f.Add("", []byte(`null`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		p, err := parseManifest(ct, body)
		if err != nil {
			require.NotNil(t, errcode.As(err), "every refusal is a client error: %v", err)
			require.Less(t, errcode.As(err).Code.Status, 500)
			return
		}
		require.True(t, IsManifestMediaType(p.mediaType))
		want, ok := specView(t, p.mediaType, body)
		if !ok {
			return
		}
		require.Equal(t, want, *p, "parseManifest disagrees with the image-spec types")
	})
}

// specView decodes body into the image-spec type of mediaType and derives what parseManifest should
// record. ok is false when the decode failed only in a field Berth does not read (a descriptor's data,
// platform, annotations or artifactType): Berth ignores those, image-spec refuses them.
func specView(t *testing.T, mediaType string, body []byte) (want parsedManifest, ok bool) {
	oci := mediaType == ocispec.MediaTypeImageManifest || mediaType == ocispec.MediaTypeImageIndex
	want.mediaType = mediaType
	want.sizes = map[digest.Digest]int64{} // every config, layer and index entry's size, by digest
	var subject *ocispec.Descriptor
	var err error
	if isIndexMediaType(mediaType) {
		var idx ocispec.Index
		if err = json.Unmarshal(body, &idx); err == nil {
			want.annotations, want.artifactType, subject = idx.Annotations, idx.ArtifactType, idx.Subject
			if !oci {
				want.artifactType = "" // a Docker manifest list has no config to take it from
			}
			for _, m := range idx.Manifests {
				want.children = append(want.children, m.Digest)
				want.sizes[m.Digest] = m.Size
			}
		}
	} else {
		var m ocispec.Manifest
		if err = json.Unmarshal(body, &m); err == nil {
			want.annotations, want.artifactType, subject = m.Annotations, cmp.Or(m.ArtifactType, m.Config.MediaType), m.Subject
			want.blobs = append(want.blobs, m.Config.Digest)
			want.sizes[m.Config.Digest] = m.Config.Size
			for _, l := range m.Layers {
				want.sizes[l.Digest] = l.Size
				if len(l.URLs) == 0 {
					want.blobs = append(want.blobs, l.Digest)
				}
			}
			if !oci {
				want.artifactType = m.Config.MediaType
			}
		}
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		var be base64.CorruptInputError
		if errors.As(err, &be) || (errors.As(err, &te) && !berthReads(te.Field)) {
			return want, false
		}
		t.Fatalf("parseManifest accepted a manifest the image-spec types refuse: %v\n%q", err, body)
	}
	if oci && subject != nil {
		want.subject = subject.Digest
	}
	return want, true
}

// berthReads reports whether a JSON field path (as json.UnmarshalTypeError names it) is one that
// parseManifest decodes itself, so that a type error there must have been refused by it too.
func berthReads(field string) bool {
	top, rest, _ := strings.Cut(strings.ToLower(field), ".")
	switch top {
	case "schemaversion", "mediatype", "artifacttype", "annotations":
		return true
	case "config", "layers", "manifests", "subject":
		first, _, _ := strings.Cut(rest, ".")
		switch first {
		case "", "mediatype", "digest", "size", "urls":
			return true
		}
	}
	return false
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		ref     string
		tag     string
		dig     string
		invalid bool
	}{
		{ref: "latest", tag: "latest"},
		{ref: "v1.2_3-x", tag: "v1.2_3-x"},
		{ref: digest.FromString("a").String(), dig: digest.FromString("a").String()},
		{ref: digest.SHA512.FromString("a").String(), dig: digest.SHA512.FromString("a").String()},
		{ref: "sha384:" + digest.SHA384.FromString("a").Encoded(), invalid: true},
		{ref: "sha256:baddigeststring", invalid: true},
		{ref: ".hidden", invalid: true},
		{ref: "", invalid: true},
	} {
		tag, d, err := parseRef(tc.ref)
		if tc.invalid {
			require.Error(t, err, tc.ref)
			require.Less(t, errcode.As(err).Code.Status, 500)
			continue
		}
		require.NoError(t, err, tc.ref)
		require.Equal(t, tc.tag, tag)
		require.Equal(t, tc.dig, d.String())
	}
}
