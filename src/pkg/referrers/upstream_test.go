package referrers_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// upstream is a registry under test with request recording and fault injection in front of it.
type upServer struct {
	URL   string
	close func()
	srv   *registrytest.Server // nil for scripted upstreams

	mu    sync.Mutex
	reqs  []*url.URL       // every request's URL, in order
	fault http.HandlerFunc // answers instead of the registry when set
	gate  chan struct{}    // when set, referrers and tag-schema requests wait for it to close
	held  chan struct{}    // receives one value per request held at the gate
}

type upstreamKind string

const (
	ggcrAPI      upstreamKind = "ggcr-api"         // go-containerregistry with the referrers API
	distribution upstreamKind = "distribution-tag" // CNCF distribution: the tag schema
)

// newRegistry starts a real registry of kind behind the recorder.
func newRegistry(t *testing.T, kind upstreamKind) *upServer {
	t.Helper()
	u := &upServer{}
	opt := registrytest.WithWrapper(u.wrap)
	switch kind {
	case ggcrAPI:
		u.srv = registrytest.NewGGCR(t, true, opt)
	case distribution:
		u.srv = registrytest.NewDistribution(t, opt)
	default:
		t.Fatalf("unknown upstream %q", kind)
	}
	u.URL, u.close = u.srv.URL, u.srv.Close
	return u
}

// newScripted starts h behind the recorder.
func newScripted(t *testing.T, h http.Handler) *upServer {
	t.Helper()
	u := &upServer{}
	srv := httptest.NewServer(u.wrap(h))
	t.Cleanup(srv.Close)
	u.URL, u.close = srv.URL, srv.Close
	return u
}

// isReferrersRequest reports whether r asks for a referrers list: the API, or a tag-schema tag.
func isReferrersRequest(u *url.URL) bool {
	return strings.Contains(u.Path, "/referrers/") || strings.Contains(u.Path, "/manifests/sha256-")
}

func (u *upServer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.URL)
		fault, gate, held := u.fault, u.gate, u.held
		u.mu.Unlock()
		if gate != nil && isReferrersRequest(r.URL) {
			held <- struct{}{}
			<-gate
		}
		if fault != nil {
			fault(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// setFault makes every request answer with f (nil: pass through).
func (u *upServer) setFault(f http.HandlerFunc) {
	u.mu.Lock()
	u.fault = f
	u.mu.Unlock()
}

// failWith answers every request with status and an OCI error body.
func failWith(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, errBody)
	}
}

// holdReferrers makes referrers requests wait until the returned release is called; each held request
// is announced on the returned channel.
func (u *upServer) holdReferrers() (held <-chan struct{}, release func()) {
	gate, h := make(chan struct{}), make(chan struct{}, 1024)
	u.mu.Lock()
	u.gate, u.held = gate, h
	u.mu.Unlock()
	var once sync.Once
	return h, func() {
		once.Do(func() {
			u.mu.Lock()
			u.gate, u.held = nil, nil
			u.mu.Unlock()
			close(gate)
		})
	}
}

// referrersRequests counts the requests for referrers lists so far (API pages and tag-schema tags).
func (u *upServer) referrersRequests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, r := range u.reqs {
		if isReferrersRequest(r) {
			n++
		}
	}
	return n
}

// requests counts every request so far.
func (u *upServer) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// lastReferrersQuery is the query of the latest referrers API request.
func (u *upServer) lastReferrersQuery() url.Values {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := len(u.reqs) - 1; i >= 0; i-- {
		if strings.Contains(u.reqs[i].Path, "/referrers/") {
			return u.reqs[i].Query()
		}
	}
	return nil
}

// stop shuts the upstream down: every later request fails to connect.
func (u *upServer) stop() { u.close() }

// artifact is a referrer manifest with its blobs, pushable upstream and locally.
type artifact struct {
	desc  ocispec.Descriptor // as a referrers list must show it
	body  []byte
	blobs [][]byte // config, layer
}

// newArtifact builds a referrer of subject. With inConfig the artifactType is carried as the config
// media type (notation, cosign legacy); otherwise as the manifest's artifactType over the empty config
// (cosign v3 bundles, oras attach).
func newArtifact(t *testing.T, subject ocispec.Descriptor, artifactType string, inConfig bool, annotations map[string]string) artifact {
	t.Helper()
	cfg := []byte("{}")
	layer := make([]byte, 64)
	_, _ = rand.Read(layer)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: manifestMT,
		Config:    ocispec.Descriptor{MediaType: emptyJSON, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{
			MediaType: "application/vnd.example.payload", Digest: digest.FromBytes(layer), Size: int64(len(layer)),
		}},
		Subject:     &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: annotations,
	}
	if inConfig {
		m.Config.MediaType = artifactType
	} else {
		m.ArtifactType = artifactType
	}
	body, err := json.Marshal(m)
	require.NoError(t, err)
	return artifact{
		desc: ocispec.Descriptor{MediaType: manifestMT, Digest: digest.FromBytes(body), Size: int64(len(body)),
			ArtifactType: artifactType, Annotations: annotations},
		body:  body,
		blobs: [][]byte{cfg, layer},
	}
}

// pushUpstream pushes a's blobs and manifest into repo of a real upstream.
func (u *upServer) push(t *testing.T, repo string, a artifact) {
	t.Helper()
	for _, b := range a.blobs {
		u.srv.PushBlob(t, repo, b)
	}
	u.srv.PushManifest(t, repo, "", manifestMT, a.body)
}

// newSubject starts an upstream of kind holding repoPath:v1 (img), the subject of a test's referrers.
func newSubject(t *testing.T, kind upstreamKind) (*upServer, registrytest.Image) {
	t.Helper()
	up := newRegistry(t, kind)
	return up, up.srv.PushImage(t, repoPath, "v1")
}

// pushNew builds an artifact referring to subject (see newArtifact) and pushes it into repoPath.
func (u *upServer) pushNew(t *testing.T, subject ocispec.Descriptor, artifactType string, inConfig bool, annotations map[string]string) artifact {
	t.Helper()
	a := newArtifact(t, subject, artifactType, inConfig, annotations)
	u.push(t, repoPath, a)
	return a
}

// newSigned starts a go-containerregistry upstream holding repoPath:v1 (img) with one notation
// signature (sig) referring to it: the setup most tests start from.
func newSigned(t *testing.T) (up *upServer, img registrytest.Image, sig artifact) {
	t.Helper()
	up, img = newSubject(t, ggcrAPI)
	return up, img, up.pushNew(t, img.Manifest, atNotation, true, nil)
}
