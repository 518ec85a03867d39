package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// GCResult is the garbage collection scenario (issue 11): one collection over GCBlobs blobs, half of
// them named by manifests and half uploaded and never referenced, measured from the API call that
// starts it to the history entry that says it succeeded.
type GCResult struct {
	Blobs     int
	Manifests int
	Duration  time.Duration
	IdleRSS   int64
	PeakRSS   int64 // Berth's peak RSS during the run
	Deleted   int64 // blobs the run deleted (from its log): must be Blobs/2
}

// gcLayersPerManifest is how many layers each manifest of the scenario names (plus one config).
const gcLayersPerManifest = 9

// RunGC fills a Berth with Cfg.GCBlobs small blobs through the OCI API, waits out the (1 s) grace
// period and runs one collection through the Harbor API.
func (r *Runner) RunGC(ctx context.Context) (res GCResult, err error) {
	b, err := StartBerth(ctx, r.Cfg.BerthBin, r.dir, r.cpus, append([]string{"--gc-grace-period", "1s"}, r.Cfg.BerthArgs...)...)
	if err != nil {
		return res, err
	}
	defer func() { _ = b.Stop(err != nil) }()
	if err := b.CreateProject(ctx, "gcbench", 0, false); err != nil {
		return res, err
	}
	n := max(r.Cfg.GCBlobs, 2*(gcLayersPerManifest+1))
	res.Manifests = n / 2 / (gcLayersPerManifest + 1)
	res.Blobs = 2 * res.Manifests * (gcLayersPerManifest + 1)
	r.progress(fmt.Sprintf("gc: uploading %d blobs and %d manifests", res.Blobs, res.Manifests))
	if err := gcFill(ctx, &b.Registry, res.Manifests); err != nil {
		return res, err
	}
	time.Sleep(1500 * time.Millisecond) // past the grace period
	mem, err := ReadMemory(b.Pid())
	if err != nil {
		return res, err
	}
	res.IdleRSS = mem.RSS
	if err := ResetPeak(b.Pid()); err != nil {
		return res, err
	}
	start := time.Now()
	log, err := gcRunOnce(ctx, &b.Registry)
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	if mem, err = ReadMemory(b.Pid()); err != nil {
		return res, err
	}
	res.PeakRSS = mem.Peak
	m := regexp.MustCompile(`blob links and ([0-9]+) blobs`).FindStringSubmatch(log)
	if m == nil {
		return res, fmt.Errorf("gc: no summary line in the log:\n%s", log)
	}
	res.Deleted, _ = strconv.ParseInt(m[1], 10, 64)
	if res.Deleted != int64(res.Blobs/2) {
		return res, fmt.Errorf("gc: deleted %d blobs, want %d", res.Deleted, res.Blobs/2)
	}
	return res, nil
}

// gcFill pushes manifests images of one config and gcLayersPerManifest layers each, and as many
// blobs again that nothing references, over 16 connections and 100 repositories.
func gcFill(ctx context.Context, reg *Registry, manifests int) error {
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := gcImage(ctx, reg, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range manifests {
		select {
		case work <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	return err
}

// gcImage pushes image i (its blobs are distinct from every other image's) and as many garbage blobs.
func gcImage(ctx context.Context, reg *Registry, i int) error {
	repo := fmt.Sprintf("gcbench/r%03d", i%100)
	var layers []ocispec.Descriptor
	for j := range gcLayersPerManifest + 1 {
		d, err := reg.PushBytes(ctx, repo, []byte(fmt.Sprintf("image %d blob %d", i, j)))
		if err != nil {
			return err
		}
		d.MediaType = ocispec.MediaTypeImageLayer
		layers = append(layers, d)
		if _, err := reg.PushBytes(ctx, repo, []byte(fmt.Sprintf("garbage %d blob %d", i, j))); err != nil {
			return err
		}
	}
	layers[0].MediaType = ocispec.MediaTypeImageConfig
	body, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: layers[0], Layers: layers[1:]})
	if err != nil {
		return err
	}
	_, err = reg.PushManifest(ctx, repo, "v"+strconv.Itoa(i), ocispec.MediaTypeImageManifest, body)
	return err
}

// gcRunOnce starts a collection, waits for it and returns its log.
func gcRunOnce(ctx context.Context, reg *Registry) (string, error) {
	hdr, _, err := reg.call(ctx, http.MethodPost, reg.URL+"/api/v2.0/system/gc/schedule",
		http.Header{"Content-Type": {"application/json"}}, []byte(`{"schedule":{"type":"Manual"},"parameters":{"workers":1}}`), http.StatusCreated)
	if err != nil {
		return "", err
	}
	loc := reg.URL + hdr.Get("Location")
	for {
		_, body, err := reg.call(ctx, http.MethodGet, loc, nil, nil, http.StatusOK)
		if err != nil {
			return "", err
		}
		var h struct {
			Status string `json:"job_status"`
		}
		if err := json.Unmarshal(body, &h); err != nil {
			return "", err
		}
		if h.Status != "Running" {
			_, log, err := reg.call(ctx, http.MethodGet, loc+"/log", nil, nil, http.StatusOK)
			if err == nil && h.Status != "Success" {
				err = fmt.Errorf("gc ended %s:\n%s", h.Status, log)
			}
			return string(log), err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// gcRows are the summary rows of r (none when the scenario did not run).
func (r *Report) gcRows() []summaryRow {
	g := r.GC
	if g == nil || g.Blobs == 0 {
		return nil
	}
	return []summaryRow{
		row(fmt.Sprintf("Garbage collection over %d blobs (%d manifests; %d unreferenced blobs deleted), online", g.Blobs, g.Manifests, g.Deleted),
			g.Duration.Round(time.Millisecond).String(), "-", "-", "-", "-"),
		row("Berth peak RSS during that collection (idle before it: "+MiB(float64(g.IdleRSS))+")",
			MiB(float64(g.PeakRSS)), "-", "-", "-", "-"),
	}
}
