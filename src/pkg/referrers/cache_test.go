package referrers_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
)

// TestFreshness: within the freshness window the cached answer is served without asking the upstream
// (HIT); after it the upstream is asked again (MISS); projects override the window with
// proxy_referrer_cache_seconds.
func TestFreshness(t *testing.T) {
	eachCache(t, func(t *testing.T, ck cacheKind) {
		up, img := newSubject(t, ggcrAPI)
		subject := img.Manifest.Digest
		first := up.pushNew(t, img.Manifest, atNotation, true, nil)
		e := newEnv(t, up, ck)
		def := e.repo(repoPath)
		short := e.repo(repoPath, e.newProject("short", map[string]string{
			meta.MetaProxyReferrerAPI: "true", meta.MetaProxyReferrerCacheSecond: "5"}))
		always := e.repo(repoPath, e.newProject("always", map[string]string{
			meta.MetaProxyReferrerAPI: "true", meta.MetaProxyReferrerCacheSecond: "0"}))
		asked := up.referrersRequests

		e.mustList(def, subject, "", content.CacheMiss)
		e.mustList(short, subject, "", content.CacheMiss)
		require.Equal(t, 2, asked())
		e.mustList(def, subject, "", content.CacheHit)
		e.mustList(short, subject, "", content.CacheHit)
		require.Equal(t, 2, asked(), "HIT within freshness: the upstream is not asked")

		e.clock.Advance(6 * time.Second)
		e.mustList(def, subject, "", content.CacheHit)
		e.mustList(short, subject, "", content.CacheMiss)
		e.mustList(short, subject, "", content.CacheHit)
		require.Equal(t, 3, asked(), "the 5 s project refreshed, the 30 s one did not")

		// A referrer added upstream shows after the window.
		second := up.pushNew(t, img.Manifest, atBundle, false, nil)
		require.Equal(t, descs(first), e.mustList(def, subject, "", content.CacheHit))
		e.clock.Advance(freshness)
		require.ElementsMatch(t, descs(first, second), e.mustList(def, subject, "", content.CacheMiss))
		require.Equal(t, 4, asked())

		// A window of 0 asks every time.
		e.mustList(always, subject, "", content.CacheMiss)
		e.mustList(always, subject, "", content.CacheMiss)
		require.Equal(t, 6, asked())
	})
}

// TestUpstreamFailure: when the upstream fails (stopped, 500, 429) the cached answer is served however
// old (STALE); with nothing cached the referrers held locally are served (LOCAL); with neither, the
// error of upstream.ClientError: 503 UPSTREAM_UNAVAILABLE, or 429 TOOMANYREQUESTS for a rate-limited
// upstream. Nothing of the failure is cached.
func TestUpstreamFailure(t *testing.T) {
	failures := []struct {
		name string
		fail func(*upServer)
		want errcode.Code // with nothing cached and nothing local
	}{
		{"stopped", func(u *upServer) { u.stop() }, errcode.ErrUpstreamUnavailable},
		{"500", func(u *upServer) { u.setFault(failWith(http.StatusInternalServerError)) }, errcode.ErrUpstreamUnavailable},
		{"429", func(u *upServer) { u.setFault(failWith(http.StatusTooManyRequests)) }, errcode.ErrTooManyRequests},
	}
	for _, kind := range []upstreamKind{ggcrAPI, distribution} {
		for _, ck := range cacheKinds {
			for _, f := range failures {
				t.Run(string(kind)+"/"+ck.name+"/"+f.name, func(t *testing.T) {
					up, img := newSubject(t, kind)
					subject := img.Manifest.Digest
					sig := up.pushNew(t, img.Manifest, atNotation, true, nil)
					if kind == distribution {
						up.srv.PushTagSchemaIndex(t, repoPath, subject, sig.desc)
					}
					withLocal := up.srv.PushImage(t, repoPath, "v2").Manifest
					bare := up.srv.PushImage(t, repoPath, "v3").Manifest
					e := newEnv(t, up, ck)
					repo := e.repo(repoPath)
					local := newArtifact(t, withLocal, atBundle, false, nil)
					e.pushLocal(repo, local)

					warm := e.mustList(repo, subject, "", content.CacheMiss)
					require.Equal(t, descs(sig), warm)
					key := e.key(repo, subject, "")
					before, ok := e.cached(key)
					require.True(t, ok)

					e.clock.Advance(freshness + time.Second)
					f.fail(up)

					require.Equal(t, warm, e.mustList(repo, subject, "", content.CacheStale))
					// A filtered request never cached falls back to the unfiltered answer.
					p, err := e.list(repo, subject, "artifactType="+url.QueryEscape(atNotation), "", 0)
					require.NoError(t, err)
					require.Equal(t, content.CacheStale, p.Cache)
					require.Equal(t, descs(sig), p.Manifests)

					require.Equal(t, descs(local), e.mustList(repo, withLocal.Digest, "", content.CacheLocal))

					_, err = e.list(repo, bare.Digest, "", "", 0)
					requireCode(t, err, f.want)

					after, ok := e.cached(key)
					require.True(t, ok)
					require.Equal(t, before, after, "the failure replaced nothing")
					for _, d := range []digest.Digest{withLocal.Digest, bare.Digest} {
						_, ok := e.cached(e.key(repo, d, ""))
						require.False(t, ok, "a failure is never cached")
					}
				})
			}
		}
	}
}

// TestUpstreamGarbage: an upstream answer that is oversize, not JSON, or whose every descriptor is
// invalid is never cached; with nothing cached it is 502 UPSTREAM_INVALID, with an answer cached that
// answer is served (STALE) and kept.
func TestUpstreamGarbage(t *testing.T) {
	for _, ck := range cacheKinds {
		for _, g := range []garbage{garbageOversize, garbageNotJSON, garbageDescriptors} {
			t.Run(ck.name+"/"+string(g), func(t *testing.T) {
				subject := digest.FromString("subject of " + string(g))
				e, s := newScriptedEnv(t, ck, subject, 3, 2)
				repo := e.repo(repoPath)
				key := e.key(repo, subject, "")

				s.setMode(g)
				_, err := e.list(repo, subject, "", "", 0)
				requireCode(t, err, errcode.ErrUpstreamInvalid)
				_, ok := e.cached(key)
				require.False(t, ok, "garbage is never cached")

				s.setMode(noGarbage)
				good := e.mustList(repo, subject, "", content.CacheMiss)
				require.Equal(t, fakeReferrers(3), good)
				stored, ok := e.cached(key)
				require.True(t, ok)

				e.clock.Advance(freshness + time.Second)
				s.setMode(g)
				require.Equal(t, good, e.mustList(repo, subject, "", content.CacheStale))
				after, ok := e.cached(key)
				require.True(t, ok)
				require.Equal(t, stored, after, "garbage replaced nothing")
			})
		}
	}
}

// TestCorruptEntry: an entry that cannot be decoded is counted, deleted and replaced by a fresh answer;
// the client is answered as on a miss.
func TestCorruptEntry(t *testing.T) {
	valid, err := cachekey.Encode(cachekey.Entry{StoredAt: time.Now(), Source: cachekey.SourceReferrersAPI,
		Index: []byte(`{"schemaVersion":2,"mediaType":"` + indexType + `","manifests":[]}`)})
	require.NoError(t, err)
	flipped := append([]byte{}, valid...)
	flipped[len(flipped)/2] ^= 0xff
	notIndex, err := cachekey.Encode(cachekey.Entry{StoredAt: time.Now(), Index: []byte("not an index")})
	require.NoError(t, err)
	corruptions := []struct {
		name  string
		value []byte
	}{
		{"not an envelope", []byte("{\"manifests\":[]}")},
		{"bad checksum", flipped},
		{"envelope around garbage", notIndex},
		{"empty", []byte{}},
	}
	for _, ck := range cacheKinds {
		for _, c := range corruptions {
			t.Run(ck.name+"/"+c.name, func(t *testing.T) {
				up, img, sig := newSigned(t)
				e := newEnv(t, up, ck)
				repo := e.repo(repoPath)
				key := e.key(repo, img.Manifest.Digest, "")
				require.NoError(t, e.cache.Set(context.Background(), key, c.value, time.Hour))

				require.Equal(t, descs(sig), e.mustList(repo, img.Manifest.Digest, "", content.CacheMiss))
				require.Equal(t, 1.0, counter(t, e.metrics.CacheErrors, "decode"))
				healed, ok := e.cached(key)
				require.True(t, ok, "the entry was replaced by a valid one")
				require.Equal(t, cachekey.SourceReferrersAPI, healed.Source)
				require.Equal(t, descs(sig), e.mustList(repo, img.Manifest.Digest, "", content.CacheHit))
			})
		}
	}
}

// TestRedisUnreachable: with Redis down every request is still answered, as a miss; the failed read is
// counted, and the request leaves the cache alone after it (no lock, no store: one failed call per
// request, not four).
func TestRedisUnreachable(t *testing.T) {
	up, img, sig := newSigned(t)
	e := newEnv(t, up, cacheKinds[0])
	ctl, m := e.newController(unreachableRedis(t), e.clients)
	repo := e.repo(repoPath)

	for range 2 {
		p, err := listWith(ctl, repo, img.Manifest.Digest, "", "", 0)
		require.NoError(t, err)
		require.Equal(t, content.CacheMiss, p.Cache)
		require.Equal(t, descs(sig), p.Manifests)
	}
	require.Equal(t, 2, up.referrersRequests(), "without a cache every request asks the upstream")
	require.Equal(t, 2.0, counter(t, m.CacheErrors, "get"))
	for _, op := range []string{"lock", "set", "decode"} {
		require.Zero(t, counter(t, m.CacheErrors, op), op)
	}
}
