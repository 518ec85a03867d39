package registrytest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is what PushImage pushed.
type Image struct {
	Manifest ocispec.Descriptor // the manifest's descriptor (media type, digest, size)
	Body     []byte             // the manifest's bytes
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
	Blobs    map[digest.Digest][]byte // config and layer bytes by digest
}

// PushClient returns an HTTP client that reaches the registry in-process, past any WithWrapper
// middleware, sending the server's Basic credentials when it has them. Use it for pushes the helpers
// below do not cover.
func (s *Server) PushClient() *http.Client {
	return &http.Client{Transport: handlerTransport{h: s.inner, user: s.Username, pass: s.Password}}
}

// handlerTransport serves requests with a handler in-process.
type handlerTransport struct {
	h          http.Handler
	user, pass string
}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RequestURI = req.URL.RequestURI()
	r.RemoteAddr = "127.0.0.1:1"
	if r.Body == nil {
		r.Body = http.NoBody
	}
	if t.user != "" {
		r.SetBasicAuth(t.user, t.pass)
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// PushBlob uploads data as a blob of repo (POST then PUT ?digest=) and returns its descriptor with
// media type application/octet-stream.
func (s *Server) PushBlob(t testing.TB, repo string, data []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	c := s.PushClient()
	start := s.URL + "/v2/" + repo + "/blobs/uploads/"
	hdr := s.do(t, c, http.MethodPost, start, "", nil, http.StatusAccepted)
	base, _ := url.Parse(start)
	loc, err := base.Parse(hdr.Get("Location"))
	if err != nil || hdr.Get("Location") == "" {
		t.Fatalf("registrytest: upload location %q: %v", hdr.Get("Location"), err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	s.do(t, c, http.MethodPut, loc.String(), "application/octet-stream", data, http.StatusCreated)
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(data))}
}

// PushManifest puts body as a manifest of repo under ref (a tag, or "" for its digest) and returns its
// descriptor. The registry must accept it (its blobs and, for an index, its manifests must exist).
func (s *Server) PushManifest(t testing.TB, repo, ref, mediaType string, body []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(body)
	if ref == "" {
		ref = d.String()
	}
	s.do(t, s.PushClient(), http.MethodPut, s.URL+"/v2/"+repo+"/manifests/"+ref, mediaType, body, http.StatusCreated)
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
}

// PushImage pushes a small OCI image (a config and one random layer) to repo, tagged tag (untagged
// when tag is "").
func (s *Server) PushImage(t testing.TB, repo, tag string) Image {
	t.Helper()
	layerData := make([]byte, 512)
	_, _ = rand.Read(layerData)
	layer := s.PushBlob(t, repo, layerData)
	layer.MediaType = ocispec.MediaTypeImageLayer
	configData := mustJSON(t, map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.Digest.String()}},
	})
	config := s.PushBlob(t, repo, configData)
	config.MediaType = ocispec.MediaTypeImageConfig
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	}
	body := mustJSON(t, m)
	desc := s.PushManifest(t, repo, tag, ocispec.MediaTypeImageManifest, body)
	return Image{Manifest: desc, Body: body, Config: config, Layers: []ocispec.Descriptor{layer},
		Blobs: map[digest.Digest][]byte{layer.Digest: layerData, config.Digest: configData}}
}

// PushReferrer pushes an artifact manifest whose subject is subject: artifactType set both as the
// manifest's artifactType and as its config media type (as notation does, so registries that report
// config.mediaType agree), one small layer, and annotations. It returns the descriptor a referrers list
// should show for it.
func (s *Server) PushReferrer(t testing.TB, repo string, subject ocispec.Descriptor, artifactType string, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	config := s.PushBlob(t, repo, []byte("{}"))
	config.MediaType = artifactType
	payload := make([]byte, 64)
	_, _ = rand.Read(payload)
	layer := s.PushBlob(t, repo, payload)
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &subj,
		Annotations:  annotations,
	}
	desc := s.PushManifest(t, repo, "", ocispec.MediaTypeImageManifest, mustJSON(t, m))
	desc.ArtifactType = artifactType
	desc.Annotations = annotations
	return desc
}

// PushTagSchemaIndex pushes the referrers tag-schema index of subject (an OCI image index listing
// referrers) under ReferrersTag(subject), as a client does on a registry without the referrers API.
func (s *Server) PushTagSchemaIndex(t testing.TB, repo string, subject digest.Digest, referrers ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	return s.PushManifest(t, repo, ReferrersTag(subject), ocispec.MediaTypeImageIndex, IndexBody(t, referrers...))
}

// IndexBody returns the JSON of an OCI image index listing descs (an empty list when none).
func IndexBody(t testing.TB, descs ...ocispec.Descriptor) []byte {
	t.Helper()
	if descs == nil {
		descs = []ocispec.Descriptor{}
	}
	return mustJSON(t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: descs})
}

// ReferrersTag is the referrers tag-schema tag of d: "<alg>-<hex>", algorithm cut at 32 characters and
// hex at 64 (the distribution spec's truncation).
func ReferrersTag(d digest.Digest) string {
	alg, enc := d.Algorithm().String(), d.Encoded()
	return alg[:min(len(alg), 32)] + "-" + enc[:min(len(enc), 64)]
}

// do sends one request, fails the test unless the status is want, and returns the response headers.
func (s *Server) do(t testing.TB, c *http.Client, method, u, contentType string, body []byte, want int) http.Header {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("registrytest: %s %s: %v", method, u, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("registrytest: %s %s: %v", method, redact(u), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		t.Fatalf("registrytest: %s %s: status %d, want %d: %s", method, redact(u), resp.StatusCode, want, strings.TrimSpace(string(msg)))
	}
	return resp.Header
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host + p.Path
	}
	return u
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("registrytest: %v", fmt.Errorf("encoding JSON: %w", err))
	}
	return b
}
