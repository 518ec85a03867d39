package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Registry is an OCI registry the run pushes to or pulls from (Berth, an upstream), with optional Basic
// credentials.
type Registry struct {
	URL        string // http://127.0.0.1:port
	User, Pass string
	Client     *http.Client
}

// newClient returns a keep-alive client for setup calls (not the measured load).
func newClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: 4, DisableCompression: true, ResponseHeaderTimeout: time.Minute,
	}}
}

// do sends one request and returns the response when its status is want (the body is the caller's to
// close); any other status is an error carrying the start of the body.
func (r *Registry) do(ctx context.Context, method, u string, hdr http.Header, body io.Reader, size int64, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Pass)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, u, resp.StatusCode, want, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// call is do for answers whose body does not matter.
func (r *Registry) call(ctx context.Context, method, u string, hdr http.Header, body []byte, want int) (http.Header, []byte, error) {
	resp, err := r.do(ctx, method, u, hdr, bytes.NewReader(body), int64(len(body)), want)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.Header, b, err
}

// PushBlob uploads size bytes from body as blob d of repo (monolithic POST then PUT).
func (r *Registry) PushBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader, size int64) error {
	start := r.URL + "/v2/" + repo + "/blobs/uploads/"
	hdr, _, err := r.call(ctx, http.MethodPost, start, nil, nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	base, _ := url.Parse(start)
	loc, err := base.Parse(hdr.Get("Location"))
	if err != nil {
		return fmt.Errorf("upload location %q: %w", hdr.Get("Location"), err)
	}
	if hdr.Get("Location") == "" {
		return errors.New("upload answered without a Location")
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	put := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := r.do(ctx, http.MethodPut, loc.String(), put, body, size, http.StatusCreated)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// PushBytes uploads b as a blob of repo and returns its descriptor (media type left to the caller).
func (r *Registry) PushBytes(ctx context.Context, repo string, b []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	err := r.PushBlob(ctx, repo, d, bytes.NewReader(b), int64(len(b)))
	return ocispec.Descriptor{Digest: d, Size: int64(len(b))}, err
}

// PushManifest puts body under ref (its digest when ref is "") and returns its descriptor.
func (r *Registry) PushManifest(ctx context.Context, repo, ref, mediaType string, body []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(body)
	if ref == "" {
		ref = d.String()
	}
	_, _, err := r.call(ctx, http.MethodPut, r.URL+"/v2/"+repo+"/manifests/"+ref,
		http.Header{"Content-Type": {mediaType}}, body, http.StatusCreated)
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}, err
}

// PushImage pushes an image of one layer (given) and a small config, tagged tag ("" = untagged), and
// returns the manifest's descriptor and bytes.
func (r *Registry) PushImage(ctx context.Context, repo, tag string, layer ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	cfgBytes, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.Digest.String()}}})
	cfg, err := r.PushBytes(ctx, repo, cfgBytes)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	cfg.MediaType = ocispec.MediaTypeImageConfig
	layer.MediaType = ocispec.MediaTypeImageLayer
	body, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
	desc, err := r.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, body)
	return desc, body, err
}

// PushReferrer pushes an artifact manifest with subject, artifactType (also its config media type) and
// annotations, one small layer whose bytes come from seed.
func (r *Registry) PushReferrer(ctx context.Context, repo string, subject ocispec.Descriptor, artifactType string, seed uint64) (ocispec.Descriptor, error) {
	cfg, err := r.PushBytes(ctx, repo, []byte("{}"))
	if err != nil {
		return cfg, err
	}
	cfg.MediaType = artifactType
	payload := NewContent(seed, 256).Bytes()
	layer, err := r.PushBytes(ctx, repo, payload)
	if err != nil {
		return layer, err
	}
	layer.MediaType = "application/octet-stream"
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	body, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType, Config: cfg,
		Layers: []ocispec.Descriptor{layer}, Subject: &subj,
		Annotations: map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z",
			"dev.berth.bench.seed": fmt.Sprint(seed)}})
	return r.PushManifest(ctx, repo, "", ocispec.MediaTypeImageManifest, body)
}

// Get reads u fully and returns the status, headers and body (up to 16 MiB).
func (r *Registry) Get(ctx context.Context, u string, hdr http.Header) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, resp.Header, b, err
}

// Stats reads a counting child's figures.
func (r *Registry) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	_, b, err := r.call(ctx, http.MethodGet, r.URL+"/_bench/stats", nil, nil, http.StatusOK)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// ResetStats zeroes a counting child's figures.
func (r *Registry) ResetStats(ctx context.Context) error {
	_, _, err := r.call(ctx, http.MethodPost, r.URL+"/_bench/reset", nil, nil, http.StatusNoContent)
	return err
}

// RegisterBlob tells the generator upstream to serve spec.
func (r *Registry) RegisterBlob(ctx context.Context, spec BlobSpec) error {
	b, _ := json.Marshal(spec)
	_, _, err := r.call(ctx, http.MethodPost, r.URL+"/_bench/blob", nil, b, http.StatusNoContent)
	return err
}
