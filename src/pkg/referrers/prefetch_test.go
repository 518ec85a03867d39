package referrers_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/referrers"
)

// withPrefetch wires the env's pull-through service to a prefetcher, as cmd/berth does.
func (e *env) withPrefetch() (*proxy.Service, *referrers.Prefetcher) {
	e.t.Helper()
	log := slog.New(slog.DiscardHandler)
	svc := proxy.New(e.local, proxy.Clients{Pool: e.clients}, e.fs, e.store, log, proxy.Options{})
	pf := referrers.NewPrefetcher(e.ctl, svc, 2, time.Minute, e.metrics, log)
	e.t.Cleanup(pf.Close)
	svc.OnSubjectPulled(pf.SubjectPulled)
	return svc, pf
}

// TestPrefetch: pulling a subject through the proxy warms its referrers list and stores the referrer
// manifests and blobs locally, so that with the upstream stopped the list (STALE from the cache, LOCAL
// without it) and the referrers themselves are still served.
func TestPrefetch(t *testing.T) {
	for _, kind := range []upstreamKind{ggcrAPI, distribution} {
		for _, ck := range cacheKinds {
			t.Run(string(kind)+"/"+ck.name, func(t *testing.T) {
				ctx := context.Background()
				up, img := newSubject(t, kind)
				subject := img.Manifest.Digest
				sig := up.pushNew(t, img.Manifest, atNotation, true, map[string]string{"org.example": "sig"})
				bundle := up.pushNew(t, img.Manifest, atBundle, false, nil)
				if kind == distribution {
					up.srv.PushTagSchemaIndex(t, repoPath, subject, sig.desc, bundle.desc)
				}
				e := newEnv(t, up, ck)
				svc, pf := e.withPrefetch()
				repo := e.repo(repoPath)

				m, err := svc.GetManifest(ctx, repo, "v1") // a client pulls the subject by tag
				require.NoError(t, err)
				require.Equal(t, subject, m.Digest)
				require.NoError(t, pf.Wait(ctx))
				require.Equal(t, 1.0, counter(t, e.metrics.PrefetchOutcomes, "ok"))

				key := e.key(repo, subject, "")
				_, ok := e.cached(key)
				require.True(t, ok, "the list is cached")
				for _, a := range []artifact{sig, bundle} {
					m, err := e.local.GetManifest(ctx, repo, a.desc.Digest.String())
					require.NoError(t, err, "referrer manifest stored locally")
					require.Equal(t, a.body, m.Body)
					for _, b := range a.blobs {
						size, err := e.local.StatBlob(ctx, repo, digest.FromBytes(b))
						require.NoError(t, err, "referrer blob stored locally")
						require.Equal(t, int64(len(b)), size)
					}
				}
				asked := up.referrersRequests()
				require.ElementsMatch(t, descs(sig, bundle), e.mustList(repo, subject, "", content.CacheHit))
				require.Equal(t, asked, up.referrersRequests(), "the client's request after the pull is a cache hit")

				// A second pull does not fetch the referrers again.
				before := up.requests()
				_, err = svc.GetManifest(ctx, repo, subject.String())
				require.NoError(t, err)
				require.NoError(t, pf.Wait(ctx))
				require.Equal(t, before, up.requests())

				// The upstream goes away.
				up.stop()
				e.clock.Advance(freshness + time.Second)
				require.ElementsMatch(t, descs(sig, bundle), e.mustList(repo, subject, "", content.CacheStale))
				p, err := e.list(repo, subject, "artifactType="+url.QueryEscape(atNotation), "", 0)
				require.NoError(t, err)
				require.Equal(t, content.CacheStale, p.Cache)
				require.Equal(t, descs(sig), p.Manifests)

				// Even the cached list lost: the referrers held locally answer.
				require.NoError(t, e.cache.Delete(ctx, key))
				require.ElementsMatch(t, descs(sig, bundle), e.mustList(repo, subject, "", content.CacheLocal))

				// And the referrers themselves are served by digest, with their blobs.
				for _, a := range []artifact{sig, bundle} {
					m, err := svc.GetManifest(ctx, repo, a.desc.Digest.String())
					require.NoError(t, err)
					require.Equal(t, a.body, m.Body)
					for _, b := range a.blobs {
						rc, err := svc.OpenBlob(ctx, repo, digest.FromBytes(b))
						require.NoError(t, err)
						got, err := io.ReadAll(rc)
						require.NoError(t, rc.Close())
						require.NoError(t, err)
						require.Equal(t, b, got)
					}
				}
				require.NoError(t, pf.Wait(ctx))
			})
		}
	}
}

// TestPrefetchAfterClose: pulls after the prefetcher closed (shutdown) are ignored, not a panic.
func TestPrefetchAfterClose(t *testing.T) {
	up := newRegistry(t, ggcrAPI)
	up.srv.PushImage(t, repoPath, "v1")
	e := newEnv(t, up, cacheKinds[0])
	svc, pf := e.withPrefetch()
	pf.Close()
	_, err := svc.GetManifest(context.Background(), e.repo(repoPath), "v1")
	require.NoError(t, err)
	require.NoError(t, pf.Wait(context.Background()))
	require.Zero(t, up.referrersRequests())
	pf.Close() // idempotent
}
