package referrers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// garbage is what a scripted upstream sends instead of a good referrers list.
type garbage string

const (
	noGarbage          garbage = ""
	garbageOversize    garbage = "oversize body"            // an index over the 4 MiB metadata limit
	garbageNotJSON     garbage = "second page not JSON"     // a good first page, then a page that is not JSON
	garbageDescriptors garbage = "every descriptor invalid" // bad digests and non-manifest media types
)

// scripted is an upstream that implements only the referrers API, for one subject: its list in pages of
// pageSize with a relative Link (go-containerregistry never paginates), or the garbage of its mode.
// Every other request is 404 NAME_UNKNOWN.
type scripted struct {
	subject  digest.Digest
	pageSize int

	mu   sync.Mutex
	list []ocispec.Descriptor
	mode garbage
}

// fakeReferrers returns n distinct referrer descriptors of type atSBOM.
func fakeReferrers(n int) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, n)
	for i := range out {
		out[i] = ocispec.Descriptor{
			MediaType: manifestMT, Digest: digest.FromString("referrer " + strconv.Itoa(i)), Size: 512 + int64(i),
			ArtifactType: atSBOM, Annotations: map[string]string{"org.example.index": strconv.Itoa(i)},
		}
	}
	return out
}

func (s *scripted) setMode(m garbage) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// reverse makes the upstream list its referrers in the opposite order from now on.
func (s *scripted) reverse() {
	s.mu.Lock()
	slices.Reverse(s.list)
	s.mu.Unlock()
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/referrers/"+s.subject.String()) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}`)
		return
	}
	s.mu.Lock()
	list, mode := slices.Clone(s.list), s.mode
	s.mu.Unlock()
	start, _ := strconv.Atoi(r.URL.Query().Get("last"))
	w.Header().Set("Content-Type", indexType)
	next := func(at int) {
		w.Header().Set("Link", `<`+r.URL.Path+`?last=`+strconv.Itoa(at)+`>; rel="next"`)
	}
	switch mode {
	case garbageOversize:
		_, _ = io.WriteString(w, `{"schemaVersion":2,"mediaType":"`+indexType+`","manifests":[],"padding":"`)
		_, _ = io.WriteString(w, strings.Repeat("x", oversize))
		_, _ = io.WriteString(w, `"}`)
		return
	case garbageNotJSON:
		if start > 0 {
			_, _ = io.WriteString(w, badJSON)
			return
		}
		next(1)
		list = list[:1]
	case garbageDescriptors:
		list = []ocispec.Descriptor{
			{MediaType: manifestMT, Digest: "sha256:not-a-digest", Size: 10, ArtifactType: atSBOM},
			{MediaType: "text/plain", Digest: digest.FromString("a text file"), Size: 11, ArtifactType: atSBOM},
			{MediaType: manifestMT, Digest: digest.FromString("negative"), Size: -1, ArtifactType: atSBOM},
		}
	default:
		end := min(start+s.pageSize, len(list))
		if end < len(list) {
			next(end)
		}
		list = list[min(start, end):end]
	}
	_ = json.NewEncoder(w).Encode(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: indexType, Manifests: list})
}

// newScriptedEnv starts a scripted upstream of n referrers of subject in pages of pageSize and an env on it.
func newScriptedEnv(t *testing.T, ck cacheKind, subject digest.Digest, n, pageSize int) (*env, *scripted) {
	t.Helper()
	s := &scripted{subject: subject, pageSize: pageSize, list: fakeReferrers(n)}
	e := newEnv(t, newScripted(t, s), ck)
	require.NotNil(t, e)
	return e, s
}
