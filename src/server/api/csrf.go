package api

import (
	"mime"
	"net/http"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// requireJSON is the API's cross-site request forgery guard. A browser holding the admin's cached Basic
// credentials sends them with any request a foreign page makes, but without a CORS preflight a page can
// only send "simple" requests: POST with Content-Type text/plain, application/x-www-form-urlencoded or
// multipart/form-data. Every body the API reads is JSON, so a state-changing request (POST, PUT, PATCH)
// must declare Content-Type application/json, and a DELETE that carries a body must too. Anything else is
// 415 UNSUPPORTED_MEDIA_TYPE before the request is authenticated or read. A browser sends
// application/json cross-origin only after a preflight, which Berth never answers with CORS headers.
func requireJSON(r *http.Request) error {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	case http.MethodDelete:
		if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
			return nil
		}
	default:
		return nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errcode.ErrMediaType.WithMessage(
			"%s %s needs a JSON body with Content-Type application/json, got %q", r.Method, r.URL.Path, ct)
	}
	return nil
}
