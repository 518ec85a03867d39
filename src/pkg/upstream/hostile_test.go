package upstream_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// The trust-boundary suite: a hostile upstream (registrytest.Hostile) attacks the client, and the
// third-party listener's record proves what left the registry's origin.

const (
	hostileUser = "berth-user"
	hostilePass = "upstream-secret"
)

// authModes are the ways the hostile registry asks for credentials.
var authModes = []string{"basic", "bearer"}

func hostileWithAuth(t *testing.T, mode string) *registrytest.Hostile {
	t.Helper()
	h := registrytest.NewHostile(t)
	switch mode {
	case "basic":
		h.Registry.RequireBasic(hostileUser, hostilePass)
	case "bearer":
		h.Registry.RequireBearer(hostileUser, hostilePass)
	}
	return h
}

func hostileClient(t *testing.T, h *registrytest.Hostile, opts upstream.Options) *upstream.Client {
	t.Helper()
	return newClient(t, upstream.Endpoint{URL: h.Registry.URL, Username: hostileUser, Password: hostilePass}, opts)
}

// requireNoCredentialsLeft checks that the registry got credentials (the scenario authenticated) and the
// third party got none.
func requireNoCredentialsLeft(t *testing.T, h *registrytest.Hostile) {
	t.Helper()
	require.NotEmpty(t, h.Registry.Authorized(), "the scenario must have authenticated at the registry")
	require.Empty(t, h.ThirdParty.Authorized(), "credentials reached the third party")
}

// Point (a): a 307 of referrers or tags to a third party whose page links on. The redirect is refused:
// the third party receives nothing at all, so neither the redirect nor a follow-up page carries credentials.
func TestHostileMetadataRedirectToThirdParty(t *testing.T) {
	subject := digest.FromString("subject")
	for _, mode := range authModes {
		for _, kind := range []string{"referrers", "tags"} {
			t.Run(mode+"/"+kind, func(t *testing.T) {
				h := hostileWithAuth(t, mode)
				page2 := registrytest.Link("/page2")
				h.ThirdParty.Handle("/page1", registrytest.Body(ocispec.MediaTypeImageIndex, indexJSON(t, desc("evil")), "Link", page2))
				h.ThirdParty.Handle("/tags1", registrytest.Body("application/json", []byte(`{"tags":["evil"]}`), "Link", page2))
				h.Registry.Handle("/v2/r/referrers/"+subject.String(), registrytest.Redirect(http.StatusTemporaryRedirect, h.ThirdParty.URL+"/page1"))
				h.Registry.Handle("/v2/r/tags/list", registrytest.Redirect(http.StatusTemporaryRedirect, h.ThirdParty.URL+"/tags1"))
				c := hostileClient(t, h, upstream.Options{})
				var err error
				if kind == "referrers" {
					_, err = c.ListReferrers(context.Background(), "r", subject.String(), "")
				} else {
					_, err = c.ListTags(context.Background(), "r")
				}
				requireKind(t, err, upstream.Invalid)
				requireNoCredentialsLeft(t, h)
				require.Empty(t, h.ThirdParty.Requests(), "no request may follow a metadata redirect off the origin")
			})
		}
	}
}

// A same-origin redirect is followed with credentials, and its Link resolves against the registry's
// origin: a relative Link on a page reached by redirect stays on the registry.
func TestHostileSameOriginRedirectAndLink(t *testing.T) {
	for _, mode := range authModes {
		t.Run(mode, func(t *testing.T) {
			h := hostileWithAuth(t, mode)
			h.Registry.Handle("/moved/tags", registrytest.Body("application/json", []byte(`{"tags":["a","b"]}`), "Link", registrytest.Link("/v2/r/tags/list?last=b")))
			h.Registry.Handle("/v2/r/tags/list", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("last") == "b" {
					registrytest.Body("application/json", []byte(`{"tags":["b","c"]}`)).ServeHTTP(w, r)
					return
				}
				registrytest.Redirect(http.StatusTemporaryRedirect, "/moved/tags").ServeHTTP(w, r)
			}))
			c := hostileClient(t, h, upstream.Options{})
			tags, err := c.ListTags(context.Background(), "r")
			require.NoError(t, err)
			require.Equal(t, []string{"a", "b", "c"}, tags, "pages merged, duplicates dropped")
			requireNoCredentialsLeft(t, h)
		})
	}
}

// A Link to another origin on the registry's own page is refused before anything is sent there.
func TestHostileForeignLink(t *testing.T) {
	subject := digest.FromString("subject")
	for _, mode := range authModes {
		t.Run(mode, func(t *testing.T) {
			h := hostileWithAuth(t, mode)
			h.ThirdParty.Handle("/page2", registrytest.Body(ocispec.MediaTypeImageIndex, indexJSON(t, desc("evil"))))
			h.Registry.Handle("/v2/r/referrers/"+subject.String(), registrytest.Body(ocispec.MediaTypeImageIndex, indexJSON(t, desc("a")), "Link", registrytest.Link(h.ThirdParty.URL+"/page2")))
			c := hostileClient(t, h, upstream.Options{})
			_, err := c.ListReferrers(context.Background(), "r", subject.String(), "")
			requireKind(t, err, upstream.Invalid)
			requireNoCredentialsLeft(t, h)
			require.Empty(t, h.ThirdParty.Requests())
		})
	}
}

// Point (b): a blob redirect to an internal address, from a registry that is public, is refused before
// any request reaches the target, whether the target is an IP literal or "localhost" (names the resolver
// maps to internal addresses are refused on the dialled IP: TestDialChecksResolvedAddress).
func TestHostileBlobRedirectToInternalRefused(t *testing.T) {
	blob := []byte("internal secrets")
	d := digest.FromBytes(blob)
	for _, target := range []string{"ip", "localhost"} {
		t.Run(target, func(t *testing.T) {
			h := hostileWithAuth(t, "basic")
			h.ThirdParty.Handle("/internal", registrytest.Body("application/octet-stream", blob))
			_, port := splitPort(t, h.ThirdParty.URL)
			to := map[string]string{
				"ip":        h.ThirdParty.URL + "/internal",
				"localhost": "http://localhost:" + port + "/internal",
			}[target]
			h.Registry.Handle("/v2/r/blobs/"+d.String(), registrytest.Redirect(http.StatusTemporaryRedirect, to))
			c := hostileClient(t, h, upstream.Options{RegistryAddressClass: upstream.AddressPublic})
			rc, _, err := c.GetBlob(context.Background(), "r", d, 0)
			require.Nil(t, rc, "nothing may be streamed")
			requireKind(t, err, upstream.Invalid)
			require.Empty(t, h.ThirdParty.Requests(), "the internal listener must not be reached")
			requireNoCredentialsLeft(t, h)
		})
	}
}

// A registry on loopback may redirect to loopback (the class it is on itself); a private-class registry
// may not redirect to loopback.
func TestHostileBlobAddressClassOfRegistry(t *testing.T) {
	blob := []byte("cdn bytes")
	d := digest.FromBytes(blob)
	for _, tc := range []struct {
		class upstream.AddressClass
		ok    bool
	}{{upstream.AddressUnknown, true}, {upstream.AddressLoopback, true}, {upstream.AddressPrivate, false}, {upstream.AddressLinkLocal, false}} {
		t.Run(tc.class.String(), func(t *testing.T) {
			h := registrytest.NewHostile(t)
			h.ThirdParty.Handle("/cdn", registrytest.Body("application/octet-stream", blob))
			h.Registry.Handle("/v2/r/blobs/"+d.String(), registrytest.Redirect(http.StatusFound, h.ThirdParty.URL+"/cdn"))
			c := newClient(t, upstream.Endpoint{URL: h.Registry.URL}, upstream.Options{RegistryAddressClass: tc.class})
			rc, _, err := c.GetBlob(context.Background(), "r", d, 0)
			if !tc.ok {
				requireKind(t, err, upstream.Invalid)
				require.Empty(t, h.ThirdParty.Requests())
				return
			}
			require.NoError(t, err)
			requireBody(t, rc, blob)
		})
	}
}

// Point (d): redirect loops and Link loops end with an Invalid error after a bounded number of requests.
func TestHostileLoopsAreBounded(t *testing.T) {
	subject := digest.FromString("subject")
	d := digest.FromString("blob")
	h := registrytest.NewHostile(t)
	h.Registry.Handle("/v2/r/blobs/"+d.String(), registrytest.Redirect(http.StatusTemporaryRedirect, "/v2/r/blobs/"+d.String()))
	h.Registry.Handle("/v2/r/tags/list", registrytest.Redirect(http.StatusFound, "/v2/r/tags/list"))
	// A cross-origin blob redirect loop: registry -> third party -> registry -> ...
	h.Registry.Handle("/v2/x/blobs/"+d.String(), registrytest.Redirect(http.StatusTemporaryRedirect, h.ThirdParty.URL+"/bounce"))
	h.ThirdParty.Handle("/bounce", registrytest.Redirect(http.StatusTemporaryRedirect, h.Registry.URL+"/v2/x/blobs/"+d.String()))
	h.Registry.Handle("/v2/r/referrers/"+subject.String(), registrytest.Body(ocispec.MediaTypeImageIndex, indexJSON(t, desc("a")),
		"Link", registrytest.Link("/v2/r/referrers/"+subject.String())))
	c := newClient(t, upstream.Endpoint{URL: h.Registry.URL}, upstream.Options{})
	ctx := context.Background()

	count := func(l *registrytest.Listener, path string) int {
		n := 0
		for _, r := range l.Requests() {
			if r.URL == path {
				n++
			}
		}
		return n
	}
	_, _, err := c.GetBlob(ctx, "r", d, 0)
	requireKind(t, err, upstream.Invalid)
	require.LessOrEqual(t, count(h.Registry, "/v2/r/blobs/"+d.String()), 11)
	_, _, err = c.GetBlob(ctx, "x", d, 0)
	requireKind(t, err, upstream.Invalid)
	require.LessOrEqual(t, count(h.ThirdParty, "/bounce"), 6)
	_, err = c.ListTags(ctx, "r")
	requireKind(t, err, upstream.Invalid)
	require.LessOrEqual(t, count(h.Registry, "/v2/r/tags/list"), 11)
	_, err = c.ListReferrers(ctx, "r", subject.String(), "")
	requireKind(t, err, upstream.Invalid)
	require.Equal(t, 1, count(h.Registry, "/v2/r/referrers/"+subject.String()), "a Link to the page just read is not followed")
}

// Point (e): a blob redirect to an allowed CDN-like third party is followed without credentials, Basic or
// Bearer, and a CDN that redirects again gets none either.
func TestHostileBlobRedirectToCDNWithoutCredentials(t *testing.T) {
	blob := []byte("layer bytes from the CDN")
	d := digest.FromBytes(blob)
	for _, mode := range authModes {
		for _, hops := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%d hops", mode, hops), func(t *testing.T) {
				h := hostileWithAuth(t, mode)
				h.ThirdParty.Handle("/cdn/blob", registrytest.Body("application/octet-stream", blob))
				h.ThirdParty.Handle("/cdn/hop", registrytest.Redirect(http.StatusFound, "/cdn/blob"))
				first := map[int]string{1: "/cdn/blob", 2: "/cdn/hop"}[hops]
				h.Registry.Handle("/v2/r/blobs/"+d.String(), registrytest.Redirect(http.StatusTemporaryRedirect, h.ThirdParty.URL+first+"?X-Amz-Signature=abc"))
				c := hostileClient(t, h, upstream.Options{})
				rc, size, err := c.GetBlob(context.Background(), "r", d, 0)
				require.NoError(t, err)
				requireBody(t, rc, blob)
				require.EqualValues(t, len(blob), size)
				requireNoCredentialsLeft(t, h)
				require.Len(t, h.ThirdParty.Requests(), hops)
				for _, r := range h.ThirdParty.Requests() {
					require.Empty(t, r.Header.Get("Referer"), "the registry's URL is not disclosed")
				}
			})
		}
	}
}

// splitPort returns the host and port of a URL.
func splitPort(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Hostname(), u.Port()
}

// Point (c): a 50-page referrers list of 4 MB per page fails with a clear Invalid error once the list's
// byte budget (4 MiB by default, across all pages) is spent: the second page is cut off as soon as it
// goes past the budget, and no third page is asked for. The entry cap ends a list of small pages the
// same way.
func TestHostileReferrersInflated(t *testing.T) {
	subject := digest.FromString("subject")
	path := "/v2/r/referrers/" + subject.String()
	for _, tc := range []struct {
		name             string
		pages, pageBytes int
		opts             upstream.Options
		wantPages        int
		wantMsg          string
	}{
		{"50 pages of 4 MB, default caps", 50, 4_000_000, upstream.Options{}, 2, "exceeds 4194304 bytes"},
		{"one page over a small byte cap", 50, 100_000, upstream.Options{MaxReferrersBytes: 64 << 10}, 1, "exceeds 65536 bytes"},
		// ReferrersPages writes entries of 475 bytes: 21 per 10 kB page, so the 101st entry is on page 5.
		{"entry cap", 50, 10_000, upstream.Options{MaxReferrersEntries: 100}, 5, "more than 100 descriptors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hostileWithAuth(t, "bearer")
			var served atomic.Int64
			h.Registry.Handle(path, registrytest.ReferrersPages(tc.pages, tc.pageBytes, &served))
			c := hostileClient(t, h, tc.opts)
			res, err := c.ListReferrers(context.Background(), "r", subject.String(), "")
			require.Nil(t, res)
			e := requireKind(t, err, upstream.Invalid)
			require.Contains(t, e.Error(), tc.wantMsg)
			pages := 0
			for _, r := range h.Registry.Requests() {
				if strings.HasPrefix(r.URL, path) && r.Authorization != "" {
					pages++
				}
			}
			require.Equal(t, tc.wantPages, pages, "pages asked for")
			require.Equal(t, upstream.CapabilityUnknown, c.ReferrersCapability(), "a list too large is not taken as a missing API")
		})
	}
	t.Run("within the caps", func(t *testing.T) {
		h := registrytest.NewHostile(t)
		h.Registry.Handle(path, registrytest.ReferrersPages(3, 10_000, nil))
		c := newClient(t, upstream.Endpoint{URL: h.Registry.URL}, upstream.Options{})
		res, err := c.ListReferrers(context.Background(), "r", subject.String(), "")
		require.NoError(t, err)
		require.Len(t, res.Index.Manifests, 3*21, "three pages of 21 entries")
	})
}

// Tag lists are bounded the same way, and a tag list that is not JSON is Invalid.
func TestHostileTagListInflated(t *testing.T) {
	big := `{"name":"r","tags":["` + strings.Repeat("x", 100) + `"` + strings.Repeat(`,"t"`, 20_000) + `]}`
	many := func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		var b strings.Builder
		b.WriteString(`{"tags":[`)
		for i := range 100 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"p%d-%d"`, page, i)
		}
		b.WriteString("]}")
		w.Header().Set("Link", registrytest.Link(fmt.Sprintf("/v2/many/tags/list?page=%d", page+1)))
		_, _ = io.WriteString(w, b.String())
	}
	h := registrytest.NewHostile(t)
	h.Registry.Handle("/v2/big/tags/list", registrytest.Body("application/json", []byte(big)))
	h.Registry.Handle("/v2/many/tags/list", http.HandlerFunc(many))
	h.Registry.Handle("/v2/junk/tags/list", registrytest.Body("application/json", []byte(`{"tags":["a"]} trailing`)))
	h.Registry.Handle("/v2/dup/tags/list", registrytest.Body("application/json", []byte(`{"tags":["a"],"tags":["b"]}`)))
	h.Registry.Handle("/v2/bad/tags/list", registrytest.Body("application/json", []byte(`{"tags":["ok","../etc","with space",""]}`)))
	c := newClient(t, upstream.Endpoint{URL: h.Registry.URL}, upstream.Options{MaxTagListBytes: 64 << 10, MaxTags: 250})
	ctx := context.Background()

	_, err := c.ListTags(ctx, "big")
	require.ErrorContains(t, requireKind(t, err, upstream.Invalid), "exceeds 65536 bytes")
	_, err = c.ListTags(ctx, "many")
	require.ErrorContains(t, requireKind(t, err, upstream.Invalid), "more than 250 tags")
	requireInvalidTags(t, c, "junk", "dup")
	tags, err := c.ListTags(ctx, "bad")
	require.NoError(t, err)
	require.Equal(t, []string{"ok"}, tags, "entries that are not tags are left out")
}

// A referrers page dripped a few bytes at a time decodes as one sent at once: the stream decoder does
// not depend on how the body is cut.
func TestHostileDrippedPage(t *testing.T) {
	subject := digest.FromString("subject")
	h := registrytest.NewHostile(t)
	want := []ocispec.Descriptor{desc("a"), desc("b"), desc("c")}
	h.Registry.Handle("/v2/r/referrers/"+subject.String(), registrytest.Drip(ocispec.MediaTypeImageIndex, indexJSON(t, want...), 7, time.Millisecond))
	c := newClient(t, upstream.Endpoint{URL: h.Registry.URL}, upstream.Options{})
	res, err := c.ListReferrers(context.Background(), "r", subject.String(), "")
	require.NoError(t, err)
	require.Equal(t, want, res.Index.Manifests)
}

// A Bearer challenge whose realm is an internal address, from a registry that is public, is refused:
// the credentials are not sent to the realm.
func TestHostileRealmOnInternalAddress(t *testing.T) {
	h := registrytest.NewHostile(t)
	h.ThirdParty.RequireBearer(hostileUser, hostilePass) // the token service is on the third party
	h.Registry.Handle("/v2/r/tags/list", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="hostile"`, h.ThirdParty.URL+"/token"))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	c := hostileClient(t, h, upstream.Options{RegistryAddressClass: upstream.AddressPublic})
	_, err := c.ListTags(context.Background(), "r")
	requireKind(t, err, upstream.Invalid)
	require.Empty(t, h.ThirdParty.Requests(), "the realm on an internal address must not be asked")
}

// BenchmarkReferrersInflated measures what one request for a 50-page, 4 MB-per-page hostile referrers
// list costs the client with the default caps (it fails on the second page). B/op includes the hostile
// server's own allocations in this process.
func BenchmarkReferrersInflated(b *testing.B) {
	subject := digest.FromString("subject")
	h := registrytest.NewHostile(b)
	h.Registry.Handle("/v2/r/referrers/"+subject.String(), registrytest.ReferrersPages(50, 4_000_000, nil))
	c, err := upstream.NewClient(upstream.Endpoint{URL: h.Registry.URL}, upstream.Options{})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ListReferrers(context.Background(), "r", subject.String(), ""); upstream.KindOf(err) != upstream.Invalid {
			b.Fatalf("want an Invalid error, got %v", err)
		}
	}
}
