package errcode

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

type wireBody struct {
	Errors []wireError `json:"errors"`
}

// Serve writes err to w as {"errors":[{"code","message","detail"}]} with the code's status. An error that is
// not an *Error becomes 500 UNKNOWN. The cause of a 5xx error is logged with the request, never sent.
// HEAD requests get the status and headers only. Serve must be called before any byte of the body was written.
func Serve(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := As(err)
	if e == nil {
		e = ErrUnknown.Wrap(err, "internal error")
	}
	status := e.Code.Status
	if status >= 500 && log != nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"status", status, "code", e.Code.Value, "err", err)
	}
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message
	}
	body, _ := json.Marshal(wireBody{Errors: []wireError{{Code: e.Code.Value, Message: msg, Detail: e.Detail}}})
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	h.Set("Content-Type", "application/json; charset=utf-8")
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Basic realm="berth"`)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
