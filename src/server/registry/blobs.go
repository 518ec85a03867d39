package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// blobHeaders sets the headers every successful blob response carries.
func blobHeaders(w http.ResponseWriter, d digest.Digest) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(headerContentDigest, d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "max-age=31536000")
}

// getBlob serves HEAD and GET /v2/<name>/blobs/<digest>. GET honours a single byte Range when the content
// seeks (206 with Content-Range; 416 with "Content-Range: bytes */<size>" when unsatisfiable). The body is
// streamed: memory stays bounded whatever the blob's size.
func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	d := req.route.Digest
	if r.Method == http.MethodHead {
		size, err := h.svc.StatBlob(ctx, req.repo, d)
		if err != nil {
			return err
		}
		blobHeaders(w, d)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	b, err := h.svc.OpenBlob(ctx, req.repo, d)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	if redirected := h.redirectBlob(w, r, b, d); redirected {
		return nil
	}
	size := b.Size()

	var (
		rng     byteRange
		partial bool
	)
	seeker, seekable := b.(io.Seeker)
	if rh := r.Header.Get("Range"); rh != "" && seekable && ifRangeMatches(r, d) {
		rng, partial, err = parseRange(rh, size)
		if err != nil {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			return err
		}
	}
	if partial && rng.start > 0 {
		if _, err := seeker.Seek(rng.start, io.SeekStart); err != nil {
			return fmt.Errorf("seeking blob %s: %w", d, err)
		}
	}
	blobHeaders(w, d)
	var n int64
	if partial {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.start, rng.start+rng.length-1, size))
		w.Header().Set("Content-Length", strconv.FormatInt(rng.length, 10))
		w.WriteHeader(http.StatusPartialContent)
		n, err = io.CopyN(w, b, rng.length)
	} else {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		n, err = io.Copy(w, b)
	}
	if err != nil {
		// Headers and maybe bytes are out: no error body now. The client sees a short body.
		h.log.WarnContext(ctx, "blob download ended early", "repository", req.repo.Name, "digest", d.String(),
			"sent", n, "err", err)
	}
	return nil
}

// redirecter is content that clients may fetch from the object store itself (storage-redirect).
type redirecter interface {
	// RedirectURL returns a presigned URL of the content, or "" when redirects are off.
	RedirectURL(ctx context.Context) (string, error)
}

// redirectBlob answers a GET with a 307 to the content's presigned URL when it offers one, as
// distribution does; Range and If-Range travel with the client's request to the object store. A URL
// that cannot be signed is logged and the blob served here instead.
func (h *Handler) redirectBlob(w http.ResponseWriter, r *http.Request, b io.Reader, d digest.Digest) bool {
	rd, ok := b.(redirecter)
	if !ok {
		return false
	}
	u, err := rd.RedirectURL(r.Context())
	if err != nil {
		h.log.WarnContext(r.Context(), "blob redirect failed; serving the blob", "digest", d.String(), "err", err)
		return false
	}
	if u == "" {
		return false
	}
	w.Header().Set(headerContentDigest, d.String())
	http.Redirect(w, r, u, http.StatusTemporaryRedirect)
	return true
}

// ifRangeMatches reports whether a Range may be honoured under If-Range: content is immutable per digest,
// so only an entity tag other than the digest's (or a date, which the registry does not serve) voids it.
func ifRangeMatches(r *http.Request, d digest.Digest) bool {
	v := r.Header.Get("If-Range")
	return v == "" || v == `"`+d.String()+`"`
}

// deleteBlob serves DELETE /v2/<name>/blobs/<digest>: 202 when the blob was linked in the repository.
func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, req *request) error {
	d := req.route.Digest
	if err := h.svc.DeleteBlob(r.Context(), req.repo, d); err != nil {
		return err
	}
	noContent(w, http.StatusAccepted)
	return nil
}
