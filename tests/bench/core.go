package bench

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CoreResult is issue 2's figures: blob and manifest GETs, Berth vs a bare server, same bytes.
type CoreResult struct {
	BlobSize         int64
	Blob             Comparison
	ManifestByDigest Comparison
	ManifestByTag    Comparison
	ManifestSize     int
	// HEAD of the same manifest paths (appended rows; the GET rows above are unchanged).
	ManifestHeadByDigest Comparison
	ManifestHeadByTag    Comparison
}

// manifestAccept is what a client such as containerd sends when it pulls a manifest.
var manifestAccept = http.Header{"Accept": {ocispec.MediaTypeImageManifest + ", " + ocispec.MediaTypeImageIndex +
	", application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"}}

// RunCore pushes a generated blob and an image manifest that has it as its layer into a fresh Berth,
// serves the same bytes with a bare net/http server (the blob from a file on the same filesystem through
// http.ServeContent, the manifest from memory), and compares GETs of both.
func (r *Runner) RunCore(ctx context.Context) (res CoreResult, err error) {
	cfg := r.Cfg
	res.BlobSize = cfg.BlobSize
	b, err := r.startBerth(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(b, &err)
	const repo = "bench/app"
	if err := b.CreateProject(ctx, "bench", 0, false); err != nil {
		return res, err
	}
	blob := NewContent(1, cfg.BlobSize)
	bd := blob.Digest()
	if err := b.PushBlob(ctx, repo, bd, blob.Reader(0), blob.Size); err != nil {
		return res, fmt.Errorf("push blob: %w", err)
	}
	mdesc, mbody, err := b.PushImage(ctx, repo, "v1", ocispec.Descriptor{Digest: bd, Size: blob.Size})
	if err != nil {
		return res, fmt.Errorf("push manifest: %w", err)
	}
	res.ManifestSize = len(mbody)

	mfile := filepath.Join(r.dir, "manifest.json")
	if err := os.WriteFile(mfile, mbody, 0o600); err != nil {
		return res, err
	}
	// The blob baseline sends a file the way Berth does (sendfile), from the same filesystem.
	bfile := filepath.Join(r.dir, "blob.bin")
	if err := writeContent(bfile, blob); err != nil {
		return res, err
	}
	blobPath := "/v2/" + repo + "/blobs/" + bd.String()
	mHeaders := map[string]string{"Docker-Content-Digest": mdesc.Digest.String()}
	bare, bareURL, err := r.startBare(ctx, []Route{
		{Path: blobPath, ContentType: "application/octet-stream", File: bfile, FromFile: true,
			Headers: map[string]string{"Docker-Content-Digest": bd.String()}},
		{Path: "/v2/" + repo + "/manifests/" + mdesc.Digest.String(), ContentType: mdesc.MediaType, File: mfile, Headers: mHeaders},
		{Path: "/v2/" + repo + "/manifests/v1", ContentType: mdesc.MediaType, File: mfile, Headers: mHeaders},
	})
	if err != nil {
		return res, err
	}
	defer r.stopProc(bare, &err)

	// Same bytes from both, checked once outside the measurements.
	for _, base := range []string{b.URL, bareURL} {
		if err := verifyDigest(ctx, base+blobPath, bd); err != nil {
			return res, err
		}
		for _, ref := range []string{mdesc.Digest.String(), "v1"} {
			if err := verifyDigest(ctx, base+"/v2/"+repo+"/manifests/"+ref, mdesc.Digest); err != nil {
				return res, err
			}
		}
	}

	pid := map[string]int{b.URL: b.Pid(), bareURL: bare.Pid()}
	load := func(base, path string, conns int, size int64, hdr http.Header) Load {
		return Load{URL: base + path, Conns: conns, WantBytes: size, Header: hdr, ServerPid: pid[base]}
	}
	r.progress("core: blob GET %s, %d connections", MiB(float64(blob.Size)), cfg.BlobConns)
	if res.Blob, err = r.plan().Compare(ctx, "blob GET",
		load(b.URL, blobPath, cfg.BlobConns, blob.Size, nil), load(bareURL, blobPath, cfg.BlobConns, blob.Size, nil), ""); err != nil {
		return res, err
	}
	for _, m := range []struct {
		name, method, ref string
		out               *Comparison
	}{
		{"manifest GET by digest", http.MethodGet, mdesc.Digest.String(), &res.ManifestByDigest},
		{"manifest GET by tag", http.MethodGet, "v1", &res.ManifestByTag},
		{"manifest HEAD by digest", http.MethodHead, mdesc.Digest.String(), &res.ManifestHeadByDigest},
		{"manifest HEAD by tag", http.MethodHead, "v1", &res.ManifestHeadByTag},
	} {
		r.progress("core: %s, %d connections", m.name, cfg.ManifestConns)
		path := "/v2/" + repo + "/manifests/" + m.ref
		berth := load(b.URL, path, cfg.ManifestConns, int64(len(mbody)), manifestAccept)
		base := load(bareURL, path, cfg.ManifestConns, int64(len(mbody)), manifestAccept)
		berth.Method, base.Method = m.method, m.method
		if *m.out, err = r.plan().Compare(ctx, m.name, berth, base, ""); err != nil {
			return res, err
		}
	}
	return res, nil
}

// verifyDigest GETs u and checks that its body hashes to want.
func verifyDigest(ctx context.Context, u string, want digest.Digest) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header = manifestAccept.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != want {
		return fmt.Errorf("GET %s: body digest %s, want %s", u, got, want)
	}
	return nil
}

// writeRoutes writes the bare server's route file.
func writeRoutes(path string, routes []Route) error {
	b, err := json.Marshal(routes)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// writeContent writes c to a new file at path.
func writeContent(path string, c *Content) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, c.Reader(0))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
