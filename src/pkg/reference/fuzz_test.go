package reference

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The fuzz targets check the scanners against the specifications' regular expressions (a differential
// test) and the round-trip and re-validation invariants. Run one with, e.g.,
//
//	go test ./src/pkg/reference -run '^$' -fuzz '^FuzzParseV2Path$' -fuzztime 30s

// Routes as regular expressions, the way a regexp router would write them; the name group is the
// spec's grammar, so any match is unique (each route has a fixed number of trailing segments).
var routeREs = func() map[Kind]*regexp.Regexp {
	name := `([a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*)`
	dig := `(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})`
	return map[Kind]*regexp.Regexp{
		KindBase:        regexp.MustCompile(`^/v2/?$`),
		KindCatalog:     regexp.MustCompile(`^/v2/_catalog$`),
		KindTags:        regexp.MustCompile(`^/v2/` + name + `/tags/list$`),
		KindManifest:    regexp.MustCompile(`^/v2/` + name + `/manifests/([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}|sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`),
		KindBlob:        regexp.MustCompile(`^/v2/` + name + `/blobs/` + dig + `$`),
		KindUploadStart: regexp.MustCompile(`^/v2/` + name + `/blobs/uploads/?$`),
		KindUpload:      regexp.MustCompile(`^/v2/` + name + `/blobs/uploads/([A-Za-z0-9_=-][A-Za-z0-9._=-]{0,127})$`),
		KindReferrers:   regexp.MustCompile(`^/v2/` + name + `/referrers/` + dig + `$`),
	}
}()

// regexpRoute routes path with routeREs, keeping only names of two or more components and at most
// MaxNameLength bytes. It returns the matching kinds and, for the first, the captured name.
func regexpRoute(path string) (kinds []Kind, name string) {
	for k := KindBase; k <= KindReferrers; k++ {
		m := routeREs[k].FindStringSubmatch(path)
		if m == nil {
			continue
		}
		if len(m) > 1 && (len(m[1]) > MaxNameLength || !strings.Contains(m[1], "/")) {
			continue
		}
		if len(m) > 1 {
			name = m[1]
		}
		kinds = append(kinds, k)
	}
	return kinds, name
}

var sentinels = []error{
	ErrNotFound, ErrNameInvalid, ErrTagInvalid, ErrDigestInvalid, ErrUploadIDInvalid,
}

func FuzzParseV2Path(f *testing.F) {
	d256 := "sha256:" + hex64
	for _, s := range []string{
		"/v2/", "/v2", "/v2/_catalog", "/v2/p/a/tags/list", "/v2/p/a/manifests/latest",
		"/v2/p/a/manifests/" + d256, "/v2/p/a/blobs/" + d256, "/v2/p/a/blobs/uploads/",
		"/v2/p/a/blobs/uploads", "/v2/p/a/blobs/uploads/0123456789abcdef0123456789abcdef",
		"/v2/p/a/referrers/" + d256, "/v2/p/blobs/uploads/blobs/uploads/", "/v2/busybox/tags/list",
		"/v2/P/a/manifests/x", "/v2/p/a/manifests/sha256:x", "/v2//blobs/uploads/", "/v2/p/a/x/y",
		"/v2/p/a/manifests/sha384:" + strings.Repeat("a", 96), "/v2/p/a__b/c-d.e/manifests/_",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := ParseV2Path(path)
		kinds, reName := regexpRoute(path)
		if len(kinds) > 1 {
			t.Fatalf("regexp router is ambiguous for %q: %v", path, kinds)
		}
		if err != nil {
			if r != (Route{}) {
				t.Fatalf("error %v with non-zero route %+v", err, r)
			}
			known := false
			for _, s := range sentinels {
				known = known || errors.Is(err, s)
			}
			if !known {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if len(kinds) == 1 {
				t.Fatalf("ParseV2Path(%q) = %v, but the regexp router finds %v", path, err, kinds[0])
			}
			return
		}
		if len(kinds) != 1 || kinds[0] != r.Kind || reName != r.Name {
			t.Fatalf("ParseV2Path(%q) = %+v, regexp router finds %v %q", path, r, kinds, reName)
		}
		checkRoute(t, r)
		again, err := ParseV2Path(r.Path())
		if err != nil || again != r {
			t.Fatalf("round trip of %q via %q: %+v, %v", path, r.Path(), again, err)
		}
		if r.Path() != path && path != "/v2" && !(r.Kind == KindUploadStart && path+"/" == r.Path()) {
			t.Fatalf("%q is not canonical: %q", path, r.Path())
		}
	})
}

// checkRoute checks that a parsed route's fields fit its kind and re-validate.
func checkRoute(t *testing.T, r Route) {
	t.Helper()
	hasName := r.Kind != KindBase && r.Kind != KindCatalog
	if hasName != (r.Name != "") {
		t.Fatalf("route %+v: name presence wrong", r)
	}
	if hasName {
		if err := ValidateName(r.Name); err != nil {
			t.Fatalf("route %+v: name does not re-validate: %v", r, err)
		}
	}
	wantDigest := r.Kind == KindBlob || r.Kind == KindReferrers || (r.Kind == KindManifest && r.Tag == "")
	if wantDigest != (r.Digest != "") {
		t.Fatalf("route %+v: digest presence wrong", r)
	}
	if r.Digest != "" {
		if d, err := ParseDigest(string(r.Digest)); err != nil || d != r.Digest || r.Digest.Validate() != nil {
			t.Fatalf("route %+v: digest does not re-validate: %v", r, err)
		}
	}
	if (r.Tag != "") != (r.Kind == KindManifest && r.Digest == "") {
		t.Fatalf("route %+v: tag presence wrong", r)
	}
	if r.Tag != "" {
		if err := ValidateTag(r.Tag); err != nil {
			t.Fatalf("route %+v: tag does not re-validate: %v", r, err)
		}
	}
	if (r.UploadID != "") != (r.Kind == KindUpload) || (r.UploadID != "" && !validUploadID(r.UploadID)) {
		t.Fatalf("route %+v: upload id wrong", r)
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"p/a", "a", "", "a__b/c", "a___b/c", "a--b/c.d", "A/b", "a//b", "a/b/", strings.Repeat("a/", 128) + "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		want := nameRE.MatchString(name) && len(name) <= MaxNameLength
		switch {
		case want && strings.Contains(name, "/"):
			if err != nil {
				t.Fatalf("ValidateName(%q) = %v, want nil", name, err)
			}
		case want:
			if !errors.Is(err, ErrNameNoProject) {
				t.Fatalf("ValidateName(%q) = %v, want ErrNameNoProject", name, err)
			}
		default:
			if !errors.Is(err, ErrNameInvalid) || errors.Is(err, ErrNameNoProject) {
				t.Fatalf("ValidateName(%q) = %v, want ErrNameInvalid", name, err)
			}
		}
	})
}

func FuzzValidateTag(f *testing.F) {
	for _, s := range []string{"latest", "_", ".a", "a.", strings.Repeat("a", 128), strings.Repeat("a", 129), "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		err := ValidateTag(tag)
		if want := tagRE.MatchString(tag); want != (err == nil) {
			t.Fatalf("ValidateTag(%q) = %v, regexp says %v", tag, err, want)
		}
		if err != nil && !errors.Is(err, ErrTagInvalid) {
			t.Fatalf("ValidateTag(%q) = %v, want ErrTagInvalid", tag, err)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + hex64, "sha512:" + hex128, "sha256:" + hex64[1:], "sha384:abc", "a+b:c", ":", "sha256:", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if want := digestRE.MatchString(s); want != (err == nil) {
			t.Fatalf("ParseDigest(%q) = %v, regexp says %v", s, err, want)
		}
		if err == nil {
			if d.String() != s || d.Validate() != nil {
				t.Fatalf("ParseDigest(%q) = %q, which go-digest refuses: %v", s, d, d.Validate())
			}
			if a := d.Algorithm(); a != digest.SHA256 && a != digest.SHA512 {
				t.Fatalf("ParseDigest(%q) accepted algorithm %q", s, a)
			}
			return
		}
		if !errors.Is(err, ErrDigestInvalid) {
			t.Fatalf("ParseDigest(%q) = %v, want ErrDigestInvalid", s, err)
		}
		alg, _, _ := strings.Cut(s, ":")
		unsupported := ociDigRE.MatchString(s) && alg != "sha256" && alg != "sha512"
		if unsupported != errors.Is(err, ErrDigestUnsupported) {
			t.Fatalf("ParseDigest(%q) = %v, unsupported should be %v", s, err, unsupported)
		}
	})
}
