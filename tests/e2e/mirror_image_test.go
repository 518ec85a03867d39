package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// runtimeImage is a multi-arch image a container runtime can unpack: an OCI index of linux/amd64 and
// linux/arm64 image manifests, each with a config and one gzip layer whose diff ID is right.
type runtimeImage struct {
	Index    ocispec.Descriptor
	Children map[string]ocispec.Descriptor // "amd64", "arm64"
	Configs  map[string]ocispec.Descriptor
	Layers   map[string]ocispec.Descriptor
	blobs    map[digest.Digest][]byte // configs and layers
	bodies   map[digest.Digest][]byte // child manifests, then the index
	order    []digest.Digest          // manifests in push order (children first)
}

// newRuntimeImage builds an image whose files say seed; layerSize pads each layer (0: small).
func newRuntimeImage(t *testing.T, seed string, layerSize int) *runtimeImage {
	t.Helper()
	img := &runtimeImage{
		Children: map[string]ocispec.Descriptor{}, Configs: map[string]ocispec.Descriptor{}, Layers: map[string]ocispec.Descriptor{},
		blobs: map[digest.Digest][]byte{}, bodies: map[digest.Digest][]byte{},
	}
	var children []ocispec.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		files := map[string][]byte{"etc/berth-" + arch: []byte(seed + " " + arch + "\n")}
		if layerSize > 0 {
			files["pad"] = bytes.Repeat([]byte(seed+arch), layerSize/len(seed+arch)+1)[:layerSize]
		}
		tarball := tarLayer(t, files)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, err := zw.Write(tarball)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		layer := img.blob(ocispec.MediaTypeImageLayerGzip, gz.Bytes())
		config := img.blob(ocispec.MediaTypeImageConfig, mustMarshal(t, map[string]any{
			"architecture": arch, "os": "linux", "config": map[string]any{"Cmd": []string{"/bin/true"}},
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromBytes(tarball).String()}},
		}))
		m := mustMarshal(t, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: config, Layers: []ocispec.Descriptor{layer},
		})
		child := img.manifest(ocispec.MediaTypeImageManifest, m)
		child.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		children = append(children, child)
		img.Children[arch], img.Configs[arch], img.Layers[arch] = child, config, layer
	}
	index := mustMarshal(t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children})
	img.Index = img.manifest(ocispec.MediaTypeImageIndex, index)
	return img
}

func (img *runtimeImage) blob(mediaType string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	img.blobs[d] = b
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (img *runtimeImage) manifest(mediaType string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	img.bodies[d] = b
	img.order = append(img.order, d)
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

// push uploads the image to repo through p and tags the index tag.
func (img *runtimeImage) push(p pusher, repo, tag string) {
	for _, b := range img.blobs {
		p.blob(repo, "", b)
	}
	for _, d := range img.order {
		ref := d.String()
		if d == img.Index.Digest {
			ref = tag
		}
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		require.NoError(p.t, json.Unmarshal(img.bodies[d], &probe))
		p.manifest(repo, ref, probe.MediaType, img.bodies[d])
	}
}

// requirePull fetches, as a runtime does, the index by tag, the child of arch by digest, and its config
// and layer, from srv at prefix (/v2/<name>) with query (e.g. "?ns=host", may be ""), anonymously, and
// checks every byte. It returns the OCI-Namespace header of the index response.
func (img *runtimeImage) requirePull(t *testing.T, srv *server, prefix, query, tag, arch string) string {
	t.Helper()
	accept := http.Header{"Accept": {ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"}}
	idx := srv.do(t, http.MethodGet, prefix+"/manifests/"+tag+query, nil, accept, nil)
	require.Equal(t, http.StatusOK, idx.Status, "index by tag:\n%s", idx)
	require.Equal(t, img.Index.Digest.String(), idx.Header.Get("Docker-Content-Digest"), "index:\n%s", idx)
	require.Equal(t, img.bodies[img.Index.Digest], idx.Body)
	child := img.Children[arch]
	res := srv.do(t, http.MethodGet, prefix+"/manifests/"+child.Digest.String()+query, nil, accept, nil)
	require.Equal(t, http.StatusOK, res.Status, "child by digest:\n%s", res)
	require.Equal(t, img.bodies[child.Digest], res.Body)
	for _, d := range []digest.Digest{img.Configs[arch].Digest, img.Layers[arch].Digest} {
		res := srv.do(t, http.MethodGet, prefix+"/blobs/"+d.String()+query, nil, nil, nil)
		require.Equal(t, http.StatusOK, res.Status, "blob %s:\n%s", d, res)
		require.Equal(t, img.blobs[d], res.Body, "blob %s", d)
	}
	return idx.Header.Get("OCI-Namespace")
}
