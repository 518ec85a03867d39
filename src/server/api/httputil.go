package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// maxBody caps request bodies.
const maxBody = 1 << 20

// decodeBody reads one JSON value of at most maxBody bytes into v. Unknown fields are ignored; an empty,
// malformed, oversized or trailing-garbage body is BAD_REQUEST.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errTrailing
			if terr != nil && !isSyntaxError(terr) {
				err = terr
			}
		}
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return errcode.ErrBadRequest.WithMessage("request body exceeds %d bytes", maxBody)
	case errors.Is(err, io.EOF):
		return errcode.ErrBadRequest.WithMessage("request body is empty")
	case isSyntaxError(err), errors.As(err, &typeErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errTrailing):
		return errcode.ErrBadRequest.WithMessage("invalid JSON body: %v", err)
	default:
		// A read error names the connection's addresses: the client is told only that reading failed.
		return errcode.ErrBadRequest.Wrap(err, "reading the request body failed")
	}
}

// errTrailing is a JSON body with more than one value.
var errTrailing = errors.New("unexpected data after the JSON value")

func isSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}

// writeJSON writes v with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only for unmarshalable types: a programming error
		http.Error(w, `{"errors":[{"code":"INTERNAL_SERVER_ERROR","message":"encoding response"}]}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeOK answers 200 with v as JSON (writeJSON); it returns nil, for a handler to return.
func writeOK(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

// emptyOK answers 200 without a body; it returns nil, for a handler to return.
func emptyOK(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusOK)
	return nil
}

// harborTime marshals like Harbor's strfmt.DateTime: RFC 3339 in UTC with milliseconds.
type harborTime time.Time

func (t harborTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`), nil
}

// storeError maps a meta error about the thing named what: ErrNotFound to NOT_FOUND, ErrConflict to
// CONFLICT, anything else to INTERNAL_SERVER_ERROR (the cause is logged, not sent).
func storeError(err error, what string) error {
	switch {
	case errors.Is(err, meta.ErrNotFound):
		return errcode.ErrNotFound.WithMessage("%s not found", what)
	case errors.Is(err, meta.ErrConflict):
		return errcode.ErrConflict.WithMessage("%s already exists", what)
	default:
		return errcode.ErrInternal.Wrap(err, "metadata store error")
	}
}

// boolHeader reports whether the request header is a true boolean.
func boolHeader(r *http.Request, name string) bool {
	v, err := strconv.ParseBool(r.Header.Get(name))
	return err == nil && v
}

// listPage answers a list endpoint, Harbor's list+count pattern: it reads page and page_size
// (paging.Parse), asks list for that page of rows, ready to encode, and the total count (q is the
// request's query), and answers the rows as a JSON array ([] when there are none) with X-Total-Count
// and Link. An error of list is returned as it is.
func listPage[J any](w http.ResponseWriter, r *http.Request, list func(q url.Values, pg paging.Page) ([]J, int64, error)) error {
	q := r.URL.Query()
	pg, err := paging.Parse(q)
	if err != nil {
		return err
	}
	rows, total, err := list(q, pg)
	if err != nil {
		return err
	}
	paging.SetHeaders(w, r, total, pg)
	return writeOK(w, nonNilSlice(rows))
}

// getJSON answers a GET of one resource: load finds it in the request and authorizes the caller, view
// turns it into its JSON model, and the model is answered 200 (writeOK). An error of load or view is
// returned as it is.
func getJSON[T, J any](w http.ResponseWriter, r *http.Request, load func(*http.Request) (T, error),
	view func(context.Context, T) (J, error)) error {
	v, err := load(r)
	if err != nil {
		return err
	}
	out, err := view(r.Context(), v)
	if err != nil {
		return err
	}
	return writeOK(w, out)
}

// convert returns rows converted by conv.
func convert[T, J any](rows []T, conv func(T) J) []J {
	out := make([]J, 0, len(rows))
	for _, row := range rows {
		out = append(out, conv(row))
	}
	return out
}

// listed converts a page of rows read from the metadata store for listPage; a store error becomes
// storeError(err, what).
func listed[T, J any](rows []T, total int64, err error, what string, conv func(T) J) ([]J, int64, error) {
	if err != nil {
		return nil, 0, storeError(err, what)
	}
	return convert(rows, conv), total, nil
}

// parseFieldQuery reads Harbor's q on one field, as the repository and user lists take it: "" (all),
// "<field>=~x" (the field contains x) or "<field>=x" (exact is true: the field is x). Anything else is
// BAD_REQUEST.
func parseFieldQuery(q, field string) (value string, exact bool, err error) {
	switch {
	case q == "":
		return "", false, nil
	case strings.HasPrefix(q, field+"=~"):
		return strings.TrimPrefix(q, field+"=~"), false, nil
	case strings.HasPrefix(q, field+"="):
		return strings.TrimPrefix(q, field+"="), true, nil
	}
	return "", false, errcode.ErrBadRequest.WithMessage("unsupported query %q: use %s=~<part of the %s> or %s=<%s>",
		q, field, field, field, field)
}

// adminBody checks that the caller is a system administrator, then decodes the body into v (decodeBody).
func (a *API) adminBody(w http.ResponseWriter, r *http.Request, v any) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	return decodeBody(w, r, v)
}

// authorizedBody authorizes the request with authorize first and only then decodes its JSON body into
// a T (decodeBody): a caller that may not act gets authorize's error, never a complaint about the body.
func authorizedBody[T, P any](w http.ResponseWriter, r *http.Request, authorize func(*http.Request) (P, error)) (P, T, error) {
	var body T
	who, err := authorize(r)
	if err != nil {
		return who, body, err
	}
	return who, body, decodeBody(w, r, &body)
}

// created answers 201 Created with the Location of the new resource and no body.
func created(w http.ResponseWriter, location string) error {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// pathID reads the positive integer path value name (admin.ParseID).
func pathID(r *http.Request, name string) (int64, error) {
	return admin.ParseID(name, r.PathValue(name))
}

// pathItem loads, with get, the item whose ID the path value key holds (pathID). When belongs is not
// nil, an item it rejects is NOT_FOUND like a missing one: a child is only found under its own parent.
// A store error is storeError naming what and the ID.
func pathItem[T any](r *http.Request, key, what string, get func(context.Context, int64) (T, error), belongs func(T) bool) (T, error) {
	var zero T
	id, err := pathID(r, key)
	if err != nil {
		return zero, err
	}
	v, err := get(r.Context(), id)
	if err == nil && belongs != nil && !belongs(v) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return zero, storeError(err, what+" "+strconv.FormatInt(id, 10))
	}
	return v, nil
}
