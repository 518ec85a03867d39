package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/reference"
)

// cleanupTimeout bounds the removal of an upload session after a failed request.
const cleanupTimeout = 30 * time.Second

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

func blobLocation(name string, d digest.Digest) string { return "/v2/" + name + "/blobs/" + d.String() }

// uploadHeaders sets Location, the session ID headers and Range ("0-<last byte>", "0-0" when empty, as
// the reference registry does).
func uploadHeaders(w http.ResponseWriter, name, id string, size int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	h.Set(headerUploadUUID, id)
	h.Set(headerUploadSession, id)
	end := size - 1
	if end < 0 {
		end = 0
	}
	h.Set("Range", "0-"+strconv.FormatInt(end, 10))
}

// blobCreated answers 201 for a blob now in the repository.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	w.Header().Set("Location", blobLocation(name, d))
	w.Header().Set(headerContentDigest, d.String())
	noContent(w, http.StatusCreated)
}

// startUpload serves POST /v2/<name>/blobs/uploads/: a cross-repository mount (?mount=&from=), a
// monolithic upload (?digest=, body = the blob) or a new session (202).
func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		mounted, d, err := h.tryMount(ctx, req, m, q.Get("from"))
		if err != nil {
			return err
		}
		if mounted {
			blobCreated(w, req.repo.Name, d)
			return nil
		}
		// Not mountable: fall back to a plain session, as the spec asks.
	} else if dg := q.Get("digest"); dg != "" {
		d, err := parseDigest(dg)
		if err != nil {
			return err
		}
		id, err := h.svc.StartUpload(ctx, req.repo)
		if err != nil {
			return err
		}
		if err := h.finishUpload(ctx, r, req, id, d); err != nil {
			return err
		}
		blobCreated(w, req.repo.Name, d)
		return nil
	}
	id, err := h.svc.StartUpload(ctx, req.repo)
	if err != nil {
		return err
	}
	uploadHeaders(w, req.repo.Name, id, 0)
	noContent(w, http.StatusAccepted)
	return nil
}

// tryMount links blob m from repository from into the request's repository when the caller may pull
// from and from holds the blob. Anything that makes the mount impossible (bad arguments, unknown or
// unreadable source, missing blob) reports mounted=false so the caller falls back to an upload; only
// internal failures are errors.
//
// Without from (an anonymous mount), the source is any repository of the request's own project that
// the caller may pull: the registry MAY look the blob up itself, and keeping the search inside the
// project the caller is pushing to (and reading) means the answer reveals nothing about other projects.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#mounting-a-blob-from-another-repository
func (h *Handler) tryMount(ctx context.Context, req *request, m, from string) (mounted bool, d digest.Digest, err error) {
	d, err = parseDigest(m)
	if err != nil {
		return false, "", nil
	}
	src := req.repo
	if from == "" {
		if h.authn.AuthorizeRepository(ctx, req.who, req.repo.Project, req.repo.Name, auth.Pull) != nil {
			return false, "", nil
		}
		src = content.Repo{Project: req.repo.Project}
	} else if from != req.repo.Name {
		if reference.ValidateName(from) != nil {
			return false, "", nil
		}
		src, err = h.repository(ctx, req.who, from)
		if err != nil {
			return false, "", ignoreClientError(err)
		}
		if h.authn.AuthorizeRepository(ctx, req.who, src.Project, from, auth.Pull) != nil {
			if req.who.Token {
				// As distribution does: a token that does not cover the source is challenged for one that
				// also grants repository:<from>:pull, so the client retries the mount with it.
				return false, "", &routedError{name: from, actions: ":pull",
					error: errcode.ErrUnauthorized.WithMessage("the token does not grant pull on the mount source %s", from)}
			}
			return false, "", nil
		}
	}
	if _, err := h.svc.MountBlob(ctx, src, req.repo, d); err != nil {
		return false, "", ignoreClientError(err)
	}
	return true, d, nil
}

// ignoreClientError drops 4xx errors (the condition makes a mount impossible) and keeps internal ones.
func ignoreClientError(err error) error {
	if err == nil {
		return nil
	}
	if e := errcode.As(err); e != nil && e.Code.Status < 500 {
		return nil
	}
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	return err
}

// finishUpload appends the request body to session id and commits it under d. On any failure the session
// is gone afterwards (cancelled here, or dropped by the store on a digest mismatch).
func (h *Handler) finishUpload(ctx context.Context, r *http.Request, req *request, id string, d digest.Digest) error {
	if _, err := h.appendBody(ctx, r, req, id, -1, -1); err != nil {
		h.cancel(ctx, req.repo, id)
		return err
	}
	if _, err := h.svc.CommitUpload(ctx, req.repo, id, d); err != nil {
		if !errcode.IsCode(err, errcode.ErrDigestInvalid) {
			h.cancel(ctx, req.repo, id)
		}
		return err
	}
	return nil
}

// cancel drops a session after a failure, even when the client has gone.
func (h *Handler) cancel(ctx context.Context, repo content.Repo, id string) {
	cctx, done := detach(ctx)
	defer done()
	if err := h.svc.CancelUpload(cctx, repo, id); err != nil && !errcode.IsCode(err, errcode.ErrBlobUploadUnknown) {
		h.log.WarnContext(cctx, "cancelling upload failed", "repository", repo.Name, "upload", id, "err", err)
	}
}

// appendBody streams r.Body into session id at offset (-1: at its end). want >= 0 is the exact number of
// bytes the body must hold (from Content-Range); more or fewer is SIZE_INVALID and nothing is appended.
// A body that fails to arrive is BLOB_UPLOAD_INVALID. Either way the session keeps its previous size.
func (h *Handler) appendBody(ctx context.Context, r *http.Request, req *request, id string, offset, want int64) (int64, error) {
	if want >= 0 && r.ContentLength >= 0 && r.ContentLength != want {
		return 0, errcode.ErrSizeInvalid.WithMessage("Content-Length %d does not match Content-Range (%d bytes)", r.ContentLength, want)
	}
	body := &bodyReader{r: r.Body, want: want}
	n, err := h.svc.AppendUpload(ctx, req.repo, id, offset, body)
	switch {
	case err == nil:
		return n, nil
	case body.sizeErr != nil:
		return 0, body.sizeErr
	case body.readErr != nil:
		return 0, errcode.ErrBlobUploadInvalid.Wrap(body.readErr, "reading the request body failed")
	}
	return 0, err
}

// bodyReader reads a request body, remembering why it failed; with want >= 0 it fails unless the body
// holds exactly want bytes.
type bodyReader struct {
	r       io.Reader
	want    int64 // -1: any length
	read    int64
	readErr error
	sizeErr error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.want >= 0 && b.read == b.want {
		// Expect EOF now: a further byte means the body is longer than the range says.
		var one [1]byte
		n, err := io.ReadFull(b.r, one[:])
		if n > 0 {
			b.sizeErr = errcode.ErrSizeInvalid.WithMessage("body longer than Content-Range")
			return 0, b.sizeErr
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			b.readErr = err
			return 0, err
		}
		return 0, io.EOF
	}
	if b.want >= 0 && int64(len(p)) > b.want-b.read {
		p = p[:b.want-b.read]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if errors.Is(err, io.EOF) {
		if b.want >= 0 && b.read < b.want {
			b.sizeErr = errcode.ErrSizeInvalid.WithMessage("body shorter than Content-Range")
			return n, b.sizeErr
		}
		return n, io.EOF
	}
	if err != nil {
		b.readErr = err
	}
	return n, err
}

// patchUpload serves PATCH /v2/<name>/blobs/uploads/<id>: a chunk, with Content-Range (must start where
// the session ends, else 416 with the current Range) or streamed (appended at the end).
func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	id := req.route.UploadID
	offset, want, err := h.chunkRange(ctx, w, r, req)
	if err != nil {
		return err
	}
	n, err := h.appendBody(ctx, r, req, id, offset, want)
	if err != nil {
		return h.rangeError(ctx, w, req, err)
	}
	uploadHeaders(w, req.repo.Name, id, n)
	noContent(w, http.StatusAccepted)
	return nil
}

// chunkRange reads an upload request's Content-Range: the offset the chunk must start at and its size,
// both -1 without the header. A malformed header is 416 with the session's state.
func (h *Handler) chunkRange(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) (offset, want int64, err error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, -1, nil
	}
	start, end, err := parseContentRange(cr)
	if err != nil {
		return 0, 0, h.rangeError(ctx, w, req, err)
	}
	return start, end - start + 1, nil
}

// rangeError adds the session's Location and Range to a RANGE_INVALID answer, so the client can resume.
func (h *Handler) rangeError(ctx context.Context, w http.ResponseWriter, req *request, err error) error {
	if !errcode.IsCode(err, errcode.ErrRangeInvalid) {
		return err
	}
	size, serr := h.svc.UploadSize(ctx, req.repo, req.route.UploadID)
	if serr != nil {
		return serr
	}
	uploadHeaders(w, req.repo.Name, req.route.UploadID, size)
	return err
}

// putUpload serves PUT /v2/<name>/blobs/uploads/<id>?digest=: an optional last chunk, then the commit.
func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	id := req.route.UploadID
	dg := r.URL.Query().Get("digest")
	if dg == "" {
		return errcode.ErrDigestInvalid.WithMessage("the digest parameter is required")
	}
	d, err := parseDigest(dg)
	if err != nil {
		return err
	}
	if r.ContentLength != 0 || r.Header.Get("Content-Range") != "" {
		offset, want, err := h.chunkRange(ctx, w, r, req)
		if err != nil {
			return err
		}
		if _, err := h.appendBody(ctx, r, req, id, offset, want); err != nil {
			return h.rangeError(ctx, w, req, err)
		}
	}
	if _, err := h.svc.CommitUpload(ctx, req.repo, id, d); err != nil {
		return err
	}
	blobCreated(w, req.repo.Name, d)
	return nil
}

// uploadStatus serves GET /v2/<name>/blobs/uploads/<id>: 204 with the session's Range.
func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, req *request) error {
	size, err := h.svc.UploadSize(r.Context(), req.repo, req.route.UploadID)
	if err != nil {
		return err
	}
	uploadHeaders(w, req.repo.Name, req.route.UploadID, size)
	noContent(w, http.StatusNoContent)
	return nil
}

// cancelUpload serves DELETE /v2/<name>/blobs/uploads/<id>: 204.
func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := h.svc.CancelUpload(r.Context(), req.repo, req.route.UploadID); err != nil {
		return err
	}
	noContent(w, http.StatusNoContent)
	return nil
}
