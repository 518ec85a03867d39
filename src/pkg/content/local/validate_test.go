package local

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

func TestParseManifest(t *testing.T) {
	cfg := digest.FromString("config").String()
	layer := digest.FromString("layer").String()
	child := digest.FromString("child").String()
	subj := digest.FromString("subject").String()
	ociImage := `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{"mediaType":"application/vnd.example.config","digest":"` +
		cfg + `","size":2},"layers":[{"mediaType":"l","digest":"` + layer + `","size":5}],"subject":{"mediaType":"m","digest":"` + subj +
		`","size":9},"annotations":{"k":"v"}}`
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		code        errcode.Code // zero: accepted
		want        parsedManifest
	}{
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
		{name: "one key in several objects is fine", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2,"annotations":{"mediaType":"x"}},"annotations":{"size":"y"}}`,
			want: parsedManifest{mediaType: ocispec.MediaTypeImageManifest, artifactType: "c", blobs: []digest.Digest{digest.Digest(cfg)},
				annotations: map[string]string{"size": "y"}}},
		{name: "descriptors of one digest disagree on its size", contentType: ocispec.MediaTypeImageManifest,
			body: `{"schemaVersion":2,"config":{"mediaType":"c","digest":"` + cfg + `","size":2},"layers":[{"mediaType":"l","digest":"` + cfg + `","size":3}]}`,
			code: errcode.ErrManifestInvalid},
		{name: "missing schemaVersion", contentType: ocispec.MediaTypeImageManifest,
			body: `{"config":{"mediaType":"c","digest":"` + cfg + `","size":1}}`, code: errcode.ErrManifestInvalid},
	} {
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

func FuzzParseManifest(f *testing.F) {
	f.Add(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:`+
		"a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"+`","size":1}}`))
	f.Add(ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add("", []byte(`null`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		p, err := parseManifest(ct, body)
		if err != nil {
			require.NotNil(t, errcode.As(err), "every refusal is a client error: %v", err)
			require.Less(t, errcode.As(err).Code.Status, 500)
			return
		}
		require.True(t, IsManifestMediaType(p.mediaType))
		for _, d := range append(append(p.blobs, p.children...), p.subject) {
			if d != "" {
				require.NoError(t, d.Validate())
			}
		}
	})
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
