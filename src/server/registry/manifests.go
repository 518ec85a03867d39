package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/mediatype"
)

// getManifest serves HEAD and GET /v2/<name>/manifests/<reference> with the stored media type and bytes.
func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	if r.Method == http.MethodHead {
		ctx = content.WithPullKind(ctx, content.Check)
	}
	m, err := h.svc.GetManifest(ctx, req.repo, req.route.Reference())
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Content-Length", strconv.Itoa(len(m.Body)))
	hd.Set(headerContentDigest, m.Digest.String())
	hd.Set("ETag", `"`+m.Digest.String()+`"`)
	if m.Stale {
		hd.Set(headerCache, content.CacheStale)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if h.auditPulls {
		h.record(req, req.repo.Name+"@"+m.Digest.String(), "artifact", "pull")
	}
	if _, err := w.Write(m.Body); err != nil {
		h.log.DebugContext(r.Context(), "writing manifest failed", "repository", req.repo.Name, "err", err)
	}
	return nil
}

// headerTag lists, in the answer to a push with `tag` query parameters, each tag applied.
const headerTag = "OCI-Tag"

// putManifest serves PUT /v2/<name>/manifests/<reference>[?tag=<tag>...]: at most
// content.MaxManifestSize bytes (413 beyond, reading no more than one byte past the limit), stored as
// sent, and every `tag` parameter pointed at it. 201 with Location, Docker-Content-Digest, for a
// manifest with a subject OCI-Subject, and with tag parameters one OCI-Tag per tag applied.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests-with-tags
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	if r.ContentLength > content.MaxManifestSize {
		return errcode.ErrManifestTooLarge.WithMessage("manifest of %d bytes exceeds %d", r.ContentLength, content.MaxManifestSize)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, content.MaxManifestSize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errcode.ErrManifestTooLarge.WithMessage("manifest exceeds %d bytes", content.MaxManifestSize)
		}
		return errcode.ErrManifestInvalid.Wrap(err, "reading the manifest failed")
	}
	if err := h.authorizeReferrer(r, req, body); err != nil {
		return err
	}
	tags := r.URL.Query()["tag"]
	res, err := h.svc.PutManifest(r.Context(), req.repo, req.route.Reference(), mediatype.Of(r.Header.Get("Content-Type")), body, tags...)
	if err != nil {
		return err
	}
	if len(tags) > 0 {
		for _, t := range res.Tags {
			w.Header().Add(headerTag, t)
		}
	}
	w.Header().Set("Location", "/v2/"+req.repo.Name+"/manifests/"+res.Digest.String())
	w.Header().Set(headerContentDigest, res.Digest.String())
	h.record(req, req.repo.Name+"@"+res.Digest.String(), "artifact", "create")
	if req.route.Tag != "" {
		h.record(req, req.repo.Name+":"+req.route.Tag, "tag", "create")
	}
	for _, t := range res.Tags {
		if t != req.route.Tag {
			h.record(req, req.repo.Name+":"+t, "tag", "create")
		}
	}
	if res.Subject != "" {
		w.Header().Set(headerSubject, res.Subject.String())
	}
	noContent(w, http.StatusCreated)
	return nil
}

// authorizeReferrer asks for auth.ReferrerPush when the manifest has a subject. Only bodies that
// mention "subject" are decoded for it.
func (h *Handler) authorizeReferrer(r *http.Request, req *request, body []byte) error {
	if !bytes.Contains(body, []byte(`"subject"`)) {
		return nil
	}
	var m struct {
		Subject *json.RawMessage `json:"subject"`
	}
	if json.Unmarshal(body, &m) != nil || m.Subject == nil {
		return nil // an invalid manifest is refused by PutManifest
	}
	return h.authn.AuthorizeRepository(r.Context(), req.who, req.repo.Project, req.repo.Name, auth.ReferrerPush)
}

// deleteManifest serves DELETE /v2/<name>/manifests/<reference>: by digest the manifest (with its tags
// and referrer index entry), by tag only the tag. 202.
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := h.svc.DeleteManifest(r.Context(), req.repo, req.route.Reference()); err != nil {
		return err
	}
	if req.route.Tag != "" {
		h.record(req, req.repo.Name+":"+req.route.Tag, "tag", "delete")
	} else {
		h.record(req, req.repo.Name+"@"+req.route.Digest.String(), "artifact", "delete")
	}
	noContent(w, http.StatusAccepted)
	return nil
}
