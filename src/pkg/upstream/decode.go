package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Streaming decoders for the lists an upstream sends in pages (referrers indexes, tag lists). Each page
// is decoded from the response body as it arrives, one entry at a time, into the caller's one list, and
// every page draws its bytes from one budget for the whole list: memory is bounded by the budget, not by
// what the upstream sends, and no page is held in memory whole.

// budget is the byte allowance of one list across all its pages.
type budget struct {
	left int64 // bytes still allowed
	max  int64
	what string // "referrers list", "tag list"
}

func newBudget(limit int64, what string) *budget {
	return &budget{left: limit, max: limit, what: what}
}

func (b *budget) tooLarge() error {
	return fmt.Errorf("%w: the %s exceeds %d bytes across its pages", errTooLarge, b.what, b.max)
}

// reader returns body limited to what is left of the budget; reading past it fails with errTooLarge.
// A body that announces more than is left fails at once, unread.
func (b *budget) reader(resp *http.Response) (*budgetReader, error) {
	if resp.ContentLength > b.left {
		return nil, b.tooLarge()
	}
	return &budgetReader{r: resp.Body, b: b}, nil
}

// budgetReader counts the bytes it reads against its budget and remembers the read error, so that a
// decoder's failure can be told apart: the body broke or was too large (readErr), or its bytes were wrong.
type budgetReader struct {
	r       io.Reader
	b       *budget
	readErr error
}

func (r *budgetReader) Read(p []byte) (int, error) {
	if r.b.left <= 0 {
		// One byte more tells "exactly at the limit" from "over it".
		var one [1]byte
		n, err := r.r.Read(one[:])
		if n > 0 {
			r.readErr = r.b.tooLarge()
			return 0, r.readErr
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.readErr = err
		}
		return 0, err
	}
	if int64(len(p)) > r.b.left {
		p = p[:r.b.left]
	}
	n, err := r.r.Read(p)
	r.b.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		r.readErr = err
	}
	return n, err
}

// formatError is a body that is not the JSON document expected.
type formatError struct{ err error }

func (e *formatError) Error() string { return e.err.Error() }
func (e *formatError) Unwrap() error { return e.err }

func badFormat(format string, args ...any) error {
	return &formatError{err: fmt.Errorf(format, args...)}
}

// decodeIndex reads one image index from r: a JSON object with schemaVersion 2, the index mediaType when
// it has one, and a manifests array whose entries are passed to add one at a time, raw (add decides
// whether an entry is a usable descriptor). Other members are skipped. A duplicate member, trailing data
// or anything not JSON is a *formatError; add's errors and r's errors are returned as they are.
func decodeIndex(r io.Reader, add func(json.RawMessage) error) error {
	version, mediaType := 0, ""
	err := decodeObject(r, func(dec *json.Decoder, key string) error {
		field, err := fieldName(key, "schemaVersion", "mediaType", "manifests")
		if err != nil {
			return err
		}
		switch field {
		case "schemaVersion":
			return dec.Decode(&version)
		case "mediaType":
			return dec.Decode(&mediaType)
		case "manifests":
			return decodeArray(dec, func() error {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return err
				}
				return add(raw)
			})
		}
		return skipValue(dec)
	})
	if err != nil {
		return err
	}
	if version != 2 {
		return badFormat("image index has schemaVersion %d, want 2", version)
	}
	if mediaType != "" && mediaType != ocispec.MediaTypeImageIndex {
		return badFormat("mediaType %q is not an image index", mediaType)
	}
	return nil
}

// decodeTagList reads one tag list page from r ({"name": ..., "tags": [...]}), passing each tag to add.
func decodeTagList(r io.Reader, add func(string) error) error {
	return decodeObject(r, func(dec *json.Decoder, key string) error {
		field, err := fieldName(key, "tags")
		if err != nil {
			return err
		}
		if field != "tags" {
			return skipValue(dec)
		}
		return decodeArray(dec, func() error {
			var tag string
			if err := dec.Decode(&tag); err != nil {
				return err
			}
			return add(tag)
		})
	})
}

// fieldName returns the one of fields that key names exactly, "" when it names none of them, and a
// *formatError when it names one only case-insensitively: encoding/json (and so other clients of the
// same upstream) would read "Manifests" as "manifests", and a decoder that skipped it would see another
// document than they do. The spec's member names are case-sensitive.
func fieldName(key string, fields ...string) (string, error) {
	for _, f := range fields {
		if key == f {
			return f, nil
		}
		if strings.EqualFold(key, f) {
			return "", badFormat("member %q: member names are case-sensitive (want %q)", key, f)
		}
	}
	return "", nil
}

// decodeObject reads one JSON object from r, calling member with the decoder positioned at each member's
// value, which member must consume. Decoding errors become *formatError; errors of member that are not
// JSON errors (add's, r's) are returned as they are.
func decodeObject(r io.Reader, member func(dec *json.Decoder, key string) error) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonErr(err)
		}
		key, ok := tok.(string)
		if !ok {
			return badFormat("object key expected, got %v", tok)
		}
		// encoding/json, and so many registries, match member names case-insensitively: "Manifests" beside
		// "manifests" is a duplicate too.
		folded := strings.ToLower(key)
		if seen[folded] {
			return badFormat("duplicate member %q", key)
		}
		seen[folded] = true
		if err := member(dec, key); err != nil {
			return jsonErr(err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonErr(err)
		}
		return badFormat("data after the JSON document")
	}
	return nil
}

// decodeArray reads a JSON array (or null) at dec, calling elem once per element; elem consumes it.
func decodeArray(dec *json.Decoder, elem func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return badFormat("array expected, got %v", tok)
	}
	for dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err = dec.Token() // ']'
	return err
}

// skipValue consumes one value at dec without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return badFormat("%q expected, got %v", want, tok)
	}
	return nil
}

// jsonErr turns encoding/json's errors (syntax, type, a truncated document) into *formatError and lets
// every other error through.
func jsonErr(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		fe  *formatError
	)
	switch {
	case errors.As(err, &fe):
		return err
	case errors.As(err, &syn), errors.As(err, &typ), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &formatError{err: err}
	}
	return err
}
