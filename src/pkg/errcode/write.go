package errcode

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
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
	msg := publicMessage(e)
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

// publicMessage is the message sent for e: its own message, or the code's default when it has none. A
// 5xx message that quotes its cause, or any error the cause wraps, is replaced by the code's default
// message: causes of server-side failures name internal addresses and upstream details ("dial tcp
// 10.0.0.5:443: connect: connection refused") that belong in the log, which Serve writes, not in a
// client's answer.
func publicMessage(e *Error) string {
	if e.Message == "" {
		return e.Code.Message
	}
	if e.Code.Status >= 500 && quotes(e.Message, e.Cause) {
		return e.Code.Message
	}
	return e.Message
}

// minQuoted is the shortest error text taken as quoted: shorter texts ("EOF") occur in plain words.
const minQuoted = 8

// quotes reports whether msg contains the text of err or of any error err wraps.
func quotes(msg string, err error) bool {
	if err == nil {
		return false
	}
	if s := err.Error(); len(s) >= minQuoted && strings.Contains(msg, s) {
		return true
	}
	switch u := err.(type) { //nolint:errorlint // walking the chain by hand, one level at a time
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			if quotes(msg, inner) {
				return true
			}
		}
		return false
	}
	return quotes(msg, errors.Unwrap(err))
}
