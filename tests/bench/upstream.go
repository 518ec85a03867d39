package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// Stats are a counting upstream's figures since its last reset (GET /_bench/stats).
type Stats struct {
	Requests  int64 `json:"requests"`   // every request but /_bench/
	BlobGets  int64 `json:"blob_gets"`  // GET .../blobs/<digest>
	BlobBytes int64 `json:"blob_bytes"` // body bytes written by blob GETs
	Referrers int64 `json:"referrers"`  // GET .../referrers/<digest>
}

// counters are the live Stats.
type counters struct {
	requests, blobGets, blobBytes, referrers atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{Requests: c.requests.Load(), BlobGets: c.blobGets.Load(), BlobBytes: c.blobBytes.Load(),
		Referrers: c.referrers.Load()}
}

func (c *counters) reset() {
	c.requests.Store(0)
	c.blobGets.Store(0)
	c.blobBytes.Store(0)
	c.referrers.Store(0)
}

// serveAdmin answers /_bench/stats (GET) and /_bench/reset (POST); false when the path is not one of them.
func (c *counters) serveAdmin(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == "/_bench/stats" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.snapshot())
	case r.URL.Path == "/_bench/reset" && r.Method == http.MethodPost:
		c.reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	return true
}

// countingWriter counts body bytes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// CountingHandler wraps a registry and counts the requests it serves, blob bytes and referrers calls.
type CountingHandler struct {
	next http.Handler
	c    counters
}

// NewCountingHandler wraps next.
func NewCountingHandler(next http.Handler) *CountingHandler { return &CountingHandler{next: next} }

func (h *CountingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.c.serveAdmin(w, r) {
		return
	}
	h.c.requests.Add(1)
	kind := pathKind(r.URL.Path)
	switch {
	case kind == "blobs" && r.Method == http.MethodGet:
		h.c.blobGets.Add(1)
		// Not wrapped with ReadFrom: every byte goes through Write and is counted.
		h.next.ServeHTTP(countingWriter{ResponseWriter: w, n: &h.c.blobBytes}, r)
		return
	case kind == "referrers" && r.Method == http.MethodGet:
		h.c.referrers.Add(1)
	}
	h.next.ServeHTTP(w, r)
}

// pathKind is "blobs", "manifests", "referrers" or "" for /v2/<name>/<kind>/<ref>.
func pathKind(p string) string {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return ""
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return ""
	}
	j := strings.LastIndexByte(rest[:i], '/')
	if j < 0 { // no repository name before the kind
		return ""
	}
	kind := rest[j+1 : i]
	switch kind {
	case "blobs", "manifests", "referrers":
		return kind
	}
	return ""
}

// UpstreamHandler is a minimal registry that serves generated blobs (registered by digest with
// POST /_bench/blob {"digest","seed","size"}) under any repository: GET /v2/, HEAD and GET
// /v2/<name>/blobs/<digest> with single-range support. It never holds a blob in memory, and counts the
// bytes it sends (Stats). It trusts the registered digest: the registry pulling through verifies it.
type UpstreamHandler struct {
	mu    sync.RWMutex
	blobs map[digest.Digest]upBlob
	c     counters
	bufs  sync.Pool
}

// BlobSpec registers a generated blob with the upstream.
type BlobSpec struct {
	Digest digest.Digest `json:"digest"`
	Seed   uint64        `json:"seed"`
	Size   int64         `json:"size"`
	Rate   int64         `json:"rate,omitempty"` // bytes per second per GET; 0 = as fast as it goes
}

// upBlob is a registered blob.
type upBlob struct {
	*Content
	rate int64
}

// NewUpstreamHandler returns an upstream with no blobs.
func NewUpstreamHandler() *UpstreamHandler {
	return &UpstreamHandler{blobs: map[digest.Digest]upBlob{},
		bufs: sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}}
}

func (u *UpstreamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u.c.serveAdmin(w, r) {
		return
	}
	if r.URL.Path == "/_bench/blob" && r.Method == http.MethodPost {
		var b BlobSpec
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Digest.Validate() != nil || b.Size < 0 {
			http.Error(w, "bad blob spec", http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.blobs[b.Digest] = upBlob{Content: NewContent(b.Seed, b.Size), rate: b.Rate}
		u.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	u.c.requests.Add(1)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	}
	if pathKind(r.URL.Path) != "blobs" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "the bench upstream serves blobs only")
		return
	}
	d := digest.Digest(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
	u.mu.RLock()
	c, ok := u.blobs[d]
	u.mu.RUnlock()
	if !ok {
		ociError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
		return
	}
	start, end := int64(0), c.Size // [start, end)
	status := http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" {
		s, e, ok := parseSimpleRange(rh, c.Size)
		if !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", c.Size))
			ociError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UNKNOWN", "bad range")
			return
		}
		start, end, status = s, e, http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, c.Size))
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	u.c.blobGets.Add(1)
	bp := u.bufs.Get().(*[]byte)
	defer u.bufs.Put(bp)
	buf := *bp
	if c.rate > 0 {
		buf = buf[:min(len(buf), 64<<10)] // smaller steps pace more smoothly
	}
	begin := time.Now()
	for off := start; off < end; {
		if c.rate > 0 { // pace: the bytes sent so far may not be ahead of rate
			due := begin.Add(time.Duration(float64(off-start) / float64(c.rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-r.Context().Done():
					return
				}
			}
		}
		n := int(min(int64(len(buf)), end-off))
		_, _ = c.ReadAt(buf[:n], off) // within bounds: no error
		m, err := w.Write(buf[:n])
		u.c.blobBytes.Add(int64(m))
		if err != nil {
			return
		}
		off += int64(n)
	}
}

// parseSimpleRange parses "bytes=a-" or "bytes=a-b" into [start, end).
func parseSimpleRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 || s >= size {
		return 0, 0, false
	}
	e := size
	if b != "" {
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last < s {
			return 0, 0, false
		}
		e = min(last+1, size)
	}
	return s, e, true
}

func ociError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
