package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// HardeningResult is issue 8's memory and amplification figures: what anonymous clients can make a
// proxy-cache project hold in memory or ask its upstream.
type HardeningResult struct {
	IdleRSS int64 // Berth's RSS once its projects exist, before any scenario

	// 1000 anonymous referrers requests with random 255-byte artifactType values (half on a project
	// with the Proxy Referrer API, half on one without, whose local referrers cache is keyed by it).
	RandomTypes    int
	RandomTypesRSS int64 // RSS after them

	// 1000 anonymous pulls of one tag the upstream does not have.
	TagMisses        int
	TagMissUpstream  int64 // manifest requests the upstream received meanwhile
	TagMissStatuses  map[int]int
	FilterRequests   int   // distinct artifactType values on one subject with a fresh unfiltered entry
	FilterUpstream   int64 // referrers requests the upstream received, the unfiltered one included
	BigListClients   int   // anonymous clients asking at once for the huge list
	BigListPages     int
	BigListPageBytes int
	BigListPeak      int64 // Berth's VmHWM meanwhile
	BigListStatuses  map[int]int
	BigListUpstream  int64 // referrers pages the upstream served
}

// Hardening scenario sizes (the figures).
const (
	hardRequests  = 1000
	hardPages     = 50
	hardPageBytes = 4_000_000 // under the 4 MiB a single metadata body may have
	hardClients   = 3
	hardTypeLen   = 255
	hardRepo      = "app"
	hardProject   = "hard"
	hardLocal     = "hard-local" // proxy-cache project with the Proxy Referrer API off
)

// RunHardening starts a scripted upstream in this process (it counts what it is asked and serves a
// 50-page referrers list of 4 MB pages for one subject, small lists for the others, and 404 for every
// manifest) and one Berth with two public proxy-cache projects over it, then measures, in order: RSS
// after random artifactType values, upstream requests for tag misses, upstream requests for distinct
// filters on a subject with a fresh unfiltered entry, and peak RSS while clients ask for the huge list.
func (r *Runner) RunHardening(ctx context.Context) (res HardeningResult, err error) {
	up := newHostileUpstream()
	upURL, stopUp, err := up.start()
	if err != nil {
		return res, err
	}
	defer stopUp()
	b, err := r.startBerth(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(b, &err)
	if err = b.ProxyProject(ctx, hardProject, upURL, true); err != nil {
		return res, err
	}
	if err = b.ProxyProject(ctx, hardLocal, upURL, false); err != nil {
		return res, err
	}
	anon := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}}
	defer anon.CloseIdleConnections()
	h := &hardRun{r: r, b: b, up: up, anon: anon, res: &res}
	for _, step := range []func(context.Context) error{h.randomTypes, h.tagMisses, h.filters, h.bigList} {
		if err = step(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}

// hardRun is one run of the hardening scenario: the Berth, its upstream, the anonymous client and the
// result its steps fill in.
type hardRun struct {
	r    *Runner
	b    *Berth
	up   *hostileUpstream
	anon *http.Client
	res  *HardeningResult
}

func (h *hardRun) refURL(project string, subject digest.Digest, query string) string {
	return h.b.URL + "/v2/" + project + "/" + hardRepo + "/referrers/" + subject.String() + query
}

// randomTypes measures RSS above idle after requests with random artifactType values, half on the
// project with the Proxy Referrer API and half on the one without.
func (h *hardRun) randomTypes(ctx context.Context) error {
	mem, err := ReadMemory(h.b.Pid())
	if err != nil {
		return err
	}
	h.res.IdleRSS = mem.RSS
	h.r.progress("hardening: %d requests with random %d-byte artifactType values", hardRequests, hardTypeLen)
	h.res.RandomTypes = hardRequests
	_, err = flood(ctx, h.anon, hardRequests, func(i int) string {
		project := hardProject
		if i%2 == 1 {
			project = hardLocal
		}
		return h.refURL(project, smallSubject(1), "?artifactType="+url.QueryEscape(randomType()))
	})
	if err != nil {
		return err
	}
	mem, err = ReadMemory(h.b.Pid())
	h.res.RandomTypesRSS = mem.RSS
	return err
}

// tagMisses counts the upstream manifest requests caused by anonymous pulls of a missing tag.
func (h *hardRun) tagMisses(ctx context.Context) (err error) {
	h.r.progress("hardening: %d anonymous pulls of a tag the upstream does not have", hardRequests)
	before := h.up.manifests.Load()
	h.res.TagMisses = hardRequests
	h.res.TagMissStatuses, err = flood(ctx, h.anon, hardRequests, func(int) string {
		return h.b.URL + "/v2/" + hardProject + "/" + hardRepo + "/manifests/missing"
	})
	h.res.TagMissUpstream = h.up.manifests.Load() - before
	return err
}

// filters counts the upstream referrers requests caused by one unfiltered request and then distinct
// artifactType filters of the same subject.
func (h *hardRun) filters(ctx context.Context) error {
	h.r.progress("hardening: %d distinct artifactType values on a subject with a fresh unfiltered entry", hardRequests)
	before := h.up.referrers.Load()
	if _, err := flood(ctx, h.anon, 1, func(int) string { return h.refURL(hardProject, smallSubject(2), "") }); err != nil {
		return err
	}
	h.res.FilterRequests = hardRequests
	_, err := flood(ctx, h.anon, hardRequests, func(i int) string {
		return h.refURL(hardProject, smallSubject(2), "?artifactType="+url.QueryEscape("application/vnd.bench."+strconv.Itoa(i)))
	})
	h.res.FilterUpstream = h.up.referrers.Load() - before
	return err
}

// bigList measures Berth's peak RSS while clients ask at once for the huge list (each with another
// filter, so that each may cost its own upstream walk).
func (h *hardRun) bigList(ctx context.Context) (err error) {
	h.r.progress("hardening: peak RSS while %d clients ask for a %d-page list of %d MB pages", hardClients, hardPages, hardPageBytes/1_000_000)
	h.res.BigListClients, h.res.BigListPages, h.res.BigListPageBytes = hardClients, hardPages, hardPageBytes
	if err = ResetPeak(h.b.Pid()); err != nil {
		return err
	}
	before := h.up.referrers.Load()
	h.res.BigListStatuses, err = flood(ctx, h.anon, hardClients, func(i int) string {
		return h.refURL(hardProject, bigSubject, "?n=10000&artifactType="+url.QueryEscape(artifactTypes[i%len(artifactTypes)]))
	})
	if err != nil {
		return err
	}
	h.res.BigListUpstream = h.up.referrers.Load() - before
	mem, err := ReadMemory(h.b.Pid())
	h.res.BigListPeak = mem.Peak
	return err
}

// flood sends n anonymous GETs (URL i from urlOf) from up to 16 concurrent clients, reads every body,
// and counts the statuses. A transport error ends it.
func flood(ctx context.Context, c *http.Client, n int, urlOf func(i int) string) (map[int]int, error) {
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range min(n, 16) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				status, err := get(ctx, c, urlOf(i))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return statuses, firstErr
}

func get(ctx context.Context, c *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// randomType is a random artifactType of exactly hardTypeLen bytes.
func randomType() string {
	const prefix = "application/vnd.bench."
	b := make([]byte, (hardTypeLen-len(prefix)+1)/2)
	_, _ = rand.Read(b)
	return (prefix + hex.EncodeToString(b))[:hardTypeLen]
}

// Subjects of the hostile upstream: bigSubject has the huge list, smallSubject(i) two referrers.
var bigSubject = digest.FromString("hardening: the subject with the huge referrers list")

func smallSubject(i int) digest.Digest {
	return digest.FromString("hardening: small subject " + strconv.Itoa(i))
}

// hostileUpstream is an anonymous registry that counts manifest and referrers requests.
type hostileUpstream struct {
	manifests, referrers atomic.Int64
}

func newHostileUpstream() *hostileUpstream { return &hostileUpstream{} }

// start serves u on 127.0.0.1:0 and returns its URL and a stop function.
func (u *hostileUpstream) start() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
	}, nil
}

func (u *hostileUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	switch kind := pathKind(r.URL.Path); {
	case r.URL.Path == "/v2/" || r.URL.Path == "/v2":
		w.WriteHeader(http.StatusOK)
	case kind == "manifests":
		u.manifests.Add(1)
		ociError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
	case kind == "referrers" && r.Method == http.MethodGet:
		u.referrers.Add(1)
		u.serveReferrers(w, r)
	default:
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "not here")
	}
}

// serveReferrers answers the huge list page by page (?page=N, Link to the next), and two referrers for
// any other subject.
func (u *hostileUpstream) serveReferrers(w http.ResponseWriter, r *http.Request) {
	subject := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if subject != bigSubject.String() {
		writeIndex(w, indexBody(subject, 0, 2, 0))
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page+1 < hardPages {
		w.Header().Set("Link", "<"+r.URL.Path+"?page="+strconv.Itoa(page+1)+`>; rel="next"`)
	}
	writeIndex(w, indexBody(subject, page, 0, hardPageBytes))
}

func writeIndex(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// indexBody is a referrers index of count descriptors, or of as many as fit in size bytes when size > 0;
// each descriptor's digest is unique to (subject, page, position).
func indexBody(subject string, page, count, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[`)
	const tail = `]}`
	for i := 0; ; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%d", subject, page, i)))
		d := `{"mediaType":"` + ocispec.MediaTypeImageManifest + `","digest":"sha256:` + hex.EncodeToString(sum[:]) +
			`","size":512,"artifactType":"` + artifactTypes[i%len(artifactTypes)] + `"}`
		if (size > 0 && b.Len()+len(d)+1+len(tail) > size) || (size == 0 && i == count) {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// hardeningRows are the summary rows of r (none when the scenario did not run).
func (r *Report) hardeningRows() []summaryRow {
	h := r.Hardening
	if h == nil || h.TagMisses == 0 {
		return nil
	}
	above := h.RandomTypesRSS - h.IdleRSS
	rows := []summaryRow{
		row(fmt.Sprintf("Berth RSS after %d requests with random %d-byte artifactType values, above idle", h.RandomTypes, hardTypeLen),
			MiB(float64(above)), "-", "-", "< 64 MiB", yesNo(above < 64<<20)),
		row(fmt.Sprintf("Upstream requests for %d anonymous misses of one tag", h.TagMisses),
			strconv.FormatInt(h.TagMissUpstream, 10), "-", "-", "<= 2", yesNo(h.TagMissUpstream <= 2 && h.TagMissUpstream >= 1)),
		row(fmt.Sprintf("Upstream requests for %d distinct artifactType values on one subject, unfiltered entry fresh", h.FilterRequests),
			strconv.FormatInt(h.FilterUpstream, 10), "-", "-", "<= 1", yesNo(h.FilterUpstream <= 1)),
	}
	if h.BigListClients > 0 {
		rows = append(rows, row(fmt.Sprintf("Berth peak RSS while %d anonymous clients ask for a %d-page, %d MB-per-page referrers list (answers: %s)",
			h.BigListClients, h.BigListPages, h.BigListPageBytes/1_000_000, statusList(h.BigListStatuses)),
			MiB(float64(h.BigListPeak)), "-", "-", "< 150 MiB", yesNo(h.BigListPeak < 150<<20)))
	}
	return rows
}

// statusList formats status counts as "503 x3, 200 x1" in status order.
func statusList(m map[int]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d x%d", s, m[s]))
	}
	return strings.Join(parts, ", ")
}
