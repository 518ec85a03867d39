package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// The GC race test (docs/gc.md): with a one-second grace period, pushes with a shared layer, uploads
// paused mid-session, cross-repository mounts, pull-through fills and garbage run while garbage
// collection runs again and again through the API. Afterwards every manifest in the database has every
// blob it references (each read back), and once the grace period has passed, one more run leaves no
// unreferenced link or blob.
func TestGCRaceSQLite(t *testing.T) { gcRace(t, "") }

func TestGCRacePostgres(t *testing.T) { gcRace(t, sqltest.Postgres(t)) }

// raceWorld is what the race's writers produced, for the checks afterwards.
type raceWorld struct {
	c       *ociClient
	shared  []byte
	mu      sync.Mutex
	garbage []digest.Digest // blobs nothing references any more
	retries atomic.Int64    // pushes refused with MANIFEST_BLOB_UNKNOWN and done again
	filled  []string        // repositories the writers left artifacts in, each checked to hold some
}

func (w *raceWorld) addGarbage(ds ...digest.Digest) {
	w.mu.Lock()
	w.garbage = append(w.garbage, ds...)
	w.mu.Unlock()
}

func gcRace(t *testing.T, dbURL string) {
	dataDir := t.TempDir()
	args := []string{"--gc-grace-period", "1s"}
	if dbURL != "" {
		args = append(args, "--database-url", dbURL)
	}
	up := registrytest.NewGGCR(t, false)
	var upstream []registrytest.Image
	for i := range 3 {
		upstream = append(upstream, up.PushImage(t, "lib/app", fmt.Sprintf("v%d", i)))
	}
	s := startServeIn(t, dataDir, nil, args...)
	s.proxyProject(t, up.URL)
	s.call(t, http.MethodPost, "/api/v2.0/projects", map[string]any{"project_name": "lib"}, http.StatusCreated)
	w := &raceWorld{c: s.client(), shared: []byte("a base layer every push shares " + rand.Text())}

	var writers sync.WaitGroup
	errs := make(chan error, 32)
	run := func(fn func() error) {
		writers.Add(1)
		go func() {
			defer writers.Done()
			if err := fn(); err != nil {
				errs <- err
			}
		}()
	}
	for i := range 3 {
		run(func() error { return w.pusher(fmt.Sprintf("lib/p%d", i), 5) })
	}
	run(func() error { return w.slowUploader("lib/slow", 3) })
	run(func() error { return w.lagger("lib/lag", 6) })
	run(func() error { return w.mounter("lib/m", "lib/p0", 5) })
	run(func() error { return w.orphans("lib/orphans", 8) })
	run(func() error { return w.filler(upstream, 8) })
	if tools := raceTools(t); tools != nil {
		for i := range 2 {
			run(func() error { return tools.pushAndCopy(w, fmt.Sprintf("lib/o%d", i), fmt.Sprintf("lib/ocp%d", i), 4) })
		}
	}
	done := make(chan struct{})
	go func() { writers.Wait(); close(done) }()

	runs := 0
	for k := 0; ; k++ {
		select {
		case <-done:
		default:
			s.gcRun(t, k%2 == 0)
			runs++
			continue
		}
		break
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, runs, 3, "collections that ran during the writes")
	t.Logf("%d collections ran during the writes; %d pushes retried after MANIFEST_BLOB_UNKNOWN", runs, w.retries.Load())

	time.Sleep(1500 * time.Millisecond) // past the grace period of everything written
	s.gcRun(t, false)
	cfg := mustLoad(t, append([]string{"--data-dir", dataDir}, args...))
	w.check(t, cfg.DatabaseURLOrDefault(), dataDir)
}

// gcRun starts a collection through the API (waiting while another runs) and waits for its success.
func (s *served) gcRun(t *testing.T, deleteUntagged bool) {
	t.Helper()
	c := s.client()
	body := fmt.Sprintf(`{"schedule":{"type":"Manual"},"parameters":{"delete_untagged":%t,"workers":2}}`, deleteUntagged)
	for {
		resp, b, err := c.do(http.MethodPost, "/api/v2.0/system/gc/schedule", []byte(body), map[string]string{"Content-Type": "application/json"}) //nolint:bodyclose // do and call read and close the body
		require.NoError(t, err)
		if resp.StatusCode == http.StatusConflict {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", b)
		loc := resp.Header.Get("Location")
		require.Eventually(t, func() bool {
			_, b, err := c.do(http.MethodGet, loc, nil, nil) //nolint:bodyclose // do and call read and close the body
			require.NoError(t, err)
			var h struct {
				Status string `json:"job_status"`
			}
			require.NoError(t, json.Unmarshal(b, &h))
			if h.Status == "Running" {
				return false
			}
			_, log, _ := c.do(http.MethodGet, loc+"/log", nil, nil) //nolint:bodyclose // do and call read and close the body
			require.Equal(t, "Success", h.Status, "%s", log)
			return true
		}, time.Minute, 20*time.Millisecond)
		return
	}
}

// pushAgain retries a push refused with MANIFEST_BLOB_UNKNOWN (a blob collected between its upload and
// the manifest, when the client took longer than the grace period): the client-visible, clean outcome.
func (w *raceWorld) pushAgain(push func() error) error {
	for attempt := 0; ; attempt++ {
		err := push()
		if !errors.Is(err, errBlobUnknown) || attempt == 10 {
			return err
		}
		w.retries.Add(1)
	}
}

// uploadAll uploads each blob into repo, stopping at the first error.
func (w *raceWorld) uploadAll(repo string, blobs ...[]byte) error {
	for _, b := range blobs {
		if _, err := w.c.upload(repo, b, nil); err != nil {
			return err
		}
	}
	return nil
}

// pusher pushes n images into repo, each with the shared layer (uploaded only when the repository
// does not have it, as clients do) and a layer of its own, deleting every other previous one.
func (w *raceWorld) pusher(repo string, n int) error {
	var prev digest.Digest
	var prevLayer []byte
	for i := range n {
		config := []byte(fmt.Sprintf(`{"repo":%q,"n":%d}`, repo, i))
		own := []byte(fmt.Sprintf("layer %d of %s %s", i, repo, rand.Text()))
		var m digest.Digest
		err := w.pushAgain(func() error {
			if err := w.uploadAll(repo, config, own); err != nil {
				return err
			}
			if ok, err := w.c.has(repo, digest.FromBytes(w.shared)); err != nil || !ok {
				if _, err := w.c.upload(repo, w.shared, nil); err != nil {
					return err
				}
			}
			var err error
			m, err = w.c.putImage(repo, fmt.Sprintf("v%d", i), config, w.shared, own)
			return err
		})
		if err != nil {
			return err
		}
		if i%2 == 1 {
			if _, err := w.c.call(http.MethodDelete, "/v2/"+repo+"/manifests/"+prev.String(), nil, nil, http.StatusAccepted); err != nil { //nolint:bodyclose // do and call read and close the body
				return err
			}
			w.addGarbage(prev, digest.FromBytes(prevLayer))
		}
		prev, prevLayer = m, own
	}
	return nil
}

// slowUploader pauses each upload mid-session for longer than the grace period, while collections run.
func (w *raceWorld) slowUploader(repo string, n int) error {
	for i := range n {
		config := []byte(fmt.Sprintf(`{"slow":%d}`, i))
		layer := []byte(fmt.Sprintf("slow layer %d %s", i, rand.Text()))
		err := w.pushAgain(func() error {
			if _, err := w.c.upload(repo, layer, func() { time.Sleep(1200 * time.Millisecond) }); err != nil {
				return err
			}
			if err := w.uploadAll(repo, config); err != nil {
				return err
			}
			_, err := w.c.putImage(repo, fmt.Sprintf("v%d", i), config, layer)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lagger uploads a layer and names it in a manifest around the moment the grace period ends: the layer's
// link is then old and unreferenced, and the manifest often lands between a collection's mark and its
// sweep (the race the pins close; with them off, this test fails).
func (w *raceWorld) lagger(repo string, n int) error {
	for i := range n {
		config := []byte(fmt.Sprintf(`{"lag":%d}`, i))
		layer := []byte(fmt.Sprintf("late-named layer %d %s", i, rand.Text()))
		err := w.pushAgain(func() error {
			if err := w.uploadAll(repo, config, layer); err != nil {
				return err
			}
			time.Sleep(850*time.Millisecond + time.Duration(mrand.N(300))*time.Millisecond) //nolint:gosec // G404: jitter in a test, not a secret
			_, err := w.c.putImage(repo, fmt.Sprintf("v%d", i), config, layer)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// mounter mounts the shared layer from src (uploading it when the mount is refused) and pushes.
func (w *raceWorld) mounter(repo, src string, n int) error {
	for i := range n {
		config := []byte(fmt.Sprintf(`{"mounted":%d}`, i))
		err := w.pushAgain(func() error {
			ok, err := w.c.mount(repo, src, digest.FromBytes(w.shared))
			if err != nil {
				return err
			}
			if !ok {
				if _, err := w.c.upload(repo, w.shared, nil); err != nil {
					return err
				}
			}
			if err := w.uploadAll(repo, config); err != nil {
				return err
			}
			_, err = w.c.putImage(repo, fmt.Sprintf("v%d", i), config, w.shared)
			return err
		})
		if err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// orphans uploads blobs no manifest will name.
func (w *raceWorld) orphans(repo string, n int) error {
	for range n {
		d, err := w.c.upload(repo, []byte("orphan "+rand.Text()), nil)
		if err != nil {
			return err
		}
		w.addGarbage(d)
		time.Sleep(150 * time.Millisecond)
	}
	return nil
}

// filler pulls the upstream's images through the proxy project, rounds times; the first pulls fill.
func (w *raceWorld) filler(images []registrytest.Image, rounds int) error {
	for range rounds {
		for i, img := range images {
			resp, b, err := w.c.do(http.MethodGet, fmt.Sprintf("/v2/px/lib/app/manifests/v%d", i), nil, //nolint:bodyclose // do and call read and close the body
				map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
			if _, err := expect(resp, b, err, http.StatusOK); err != nil { //nolint:bodyclose // do and call read and close the body
				return err
			}
			for d := range img.Blobs {
				resp, b, err := w.c.do(http.MethodGet, "/v2/px/lib/app/blobs/"+d.String(), nil, nil) //nolint:bodyclose // do and call read and close the body
				if _, err := expect(resp, b, err, http.StatusOK); err != nil {                       //nolint:bodyclose // do and call read and close the body
					return err
				}
				if digest.FromBytes(b) != d {
					return fmt.Errorf("pull-through blob %s: wrong content", d)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// clientTools runs oras and crane against the served Berth, logged in as admin.
type clientTools struct {
	bin    string
	config string // DOCKER_CONFIG, with crane's login
}

// raceTools finds oras and crane (BERTH_TOOLS_BIN, else the repository's .tools/bin, `make tools`) and
// logs crane in. Without them the race runs with the raw HTTP writers only (under CI=true it fails).
func raceTools(t *testing.T) *clientTools {
	t.Helper()
	bin, err := filepath.Abs(cmp.Or(os.Getenv("BERTH_TOOLS_BIN"), filepath.Join("..", "..", "..", ".tools", "bin")))
	require.NoError(t, err)
	for _, tool := range []string{"oras", "crane"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil { //nolint:gosec // G703: the test's own tools folder
			require.NotEqual(t, "true", os.Getenv("CI"), "%s not in %s (BERTH_TOOLS_BIN; make tools)", tool, bin)
			t.Logf("%s not in %s (BERTH_TOOLS_BIN; make tools): the race runs without oras and crane", tool, bin)
			return nil
		}
	}
	t.Logf("oras and crane from %s", bin)
	return &clientTools{bin: bin, config: t.TempDir()}
}

// run runs a tool in dir and returns its combined output; a refused manifest push wraps errBlobUnknown.
func (c *clientTools) run(dir, tool string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, tool), args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "DOCKER_CONFIG="+c.config)
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		return nil
	case strings.Contains(string(out), "MANIFEST_BLOB_UNKNOWN"):
		return fmt.Errorf("%w: %s %v: %s", errBlobUnknown, tool, args, out)
	default:
		return fmt.Errorf("%s %v: %w: %s", tool, args, err, out)
	}
}

// pushAndCopy pushes n artifacts into repo with oras, each with the pushers' shared layer and one of
// its own (oras uploads only what the repository lacks, after a HEAD), and copies each to dst with
// crane, which mounts the blobs from repo (a cross-repository mount by a real client).
func (c *clientTools) pushAndCopy(w *raceWorld, repo, dst string, n int) error {
	host := strings.TrimPrefix(w.c.base, "http://")
	if err := c.run("", "crane", "auth", "login", host, "-u", "admin", "-p", w.c.pass); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gc-race-oras-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := os.WriteFile(filepath.Join(dir, "shared.bin"), w.shared, 0o600); err != nil {
		return err
	}
	const layer = ":application/vnd.oci.image.layer.v1.tar"
	w.mu.Lock()
	w.filled = append(w.filled, repo, dst)
	w.mu.Unlock()
	for i := range n {
		own := fmt.Sprintf("own-%d.bin", i)
		if err := os.WriteFile(filepath.Join(dir, own), []byte(fmt.Sprintf("oras layer %d of %s %s", i, repo, rand.Text())), 0o600); err != nil {
			return err
		}
		ref := fmt.Sprintf("%s/%s:v%d", host, repo, i)
		err := w.pushAgain(func() error {
			return c.run(dir, "oras", "push", "--plain-http", "-u", "admin", "-p", w.c.pass,
				"--artifact-type", "application/vnd.berth.gc-race", ref, "shared.bin"+layer, own+layer)
		})
		if err == nil {
			err = w.pushAgain(func() error {
				return c.run(dir, "crane", "copy", "--insecure", ref, fmt.Sprintf("%s/%s:v%d", host, dst, i))
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// check walks every manifest in the database and every stored blob.
func (w *raceWorld) check(t *testing.T, dbURL, dataDir string) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL)
	require.NoError(t, err)
	defer func() { _ = store.Close() }()
	arts, err := store.ListGCArtifacts(ctx, 0, 0)
	require.NoError(t, err)
	links, err := store.ListGCBlobLinks(ctx, "", 0, 0)
	require.NoError(t, err)
	type key struct {
		repo int64
		d    string
	}
	linked, referenced := map[key]bool{}, map[key]bool{}
	for _, l := range links {
		linked[key{l.RepositoryID, l.Digest}] = true
	}
	held, repos := map[string]bool{}, map[string]bool{}
	for _, a := range arts {
		held[a.Digest], repos[a.Repository] = true, true
		body := w.c.read(t, a.Repository, "manifests", digest.Digest(a.Digest))
		var doc struct {
			Config struct{ Digest digest.Digest }   `json:"config"`
			Layers []struct{ Digest digest.Digest } `json:"layers"`
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		for _, d := range append([]struct{ Digest digest.Digest }{doc.Config}, doc.Layers...) {
			k := key{a.RepositoryID, d.Digest.String()}
			referenced[k] = true
			if !strings.HasPrefix(a.Repository, "px/") { // pulled-through manifests need not hold their blobs
				require.True(t, linked[k], "%s@%s references %s, which is not linked", a.Repository, a.Digest, d.Digest)
				w.c.read(t, a.Repository, "blobs", d.Digest)
			}
		}
	}
	require.NotEmpty(t, arts)
	for _, r := range w.filled {
		require.True(t, repos[r], "no artifact left in %s", r)
	}
	for _, l := range links {
		held[l.Digest] = true
		require.FileExists(t, blobFile(dataDir, l.Digest), "a link without bytes")
		require.True(t, referenced[key{l.RepositoryID, l.Digest}], "unreferenced link to %s survived the last collection", l.Digest)
	}
	w.checkStorage(t, dataDir, held)
}

// checkStorage checks that every stored blob is held by a manifest or a link, and the garbage is gone.
func (w *raceWorld) checkStorage(t *testing.T, dataDir string, held map[string]bool) {
	n := 0
	require.NoError(t, filepath.WalkDir(filepath.Join(dataDir, "storage", "blobs"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		n++
		alg := filepath.Base(filepath.Dir(filepath.Dir(p)))
		require.True(t, held[alg+":"+e.Name()], "stored blob %s survived the last collection unreferenced", e.Name())
		return nil
	}))
	require.NotZero(t, n)
	require.NotEmpty(t, w.garbage)
	for _, d := range w.garbage {
		_, err := os.Stat(blobFile(dataDir, d.String()))
		require.ErrorIs(t, err, fs.ErrNotExist, "garbage %s", d)
	}
}

func blobFile(dataDir, d string) string {
	dg := digest.Digest(d)
	return filepath.Join(dataDir, "storage", "blobs", string(dg.Algorithm()), dg.Encoded()[:2], dg.Encoded())
}
