// Package mediatype reads the media type of a Content-Type header, the one rule the OCI handlers (what
// a client pushes) and the upstream client (what a registry answers) share.
package mediatype

import (
	"mime"
	"strings"
)

// Of returns the media type of the Content-Type value ct without its parameters: as
// mime.ParseMediaType gives it (lower-cased) when ct parses, else the part before the first ';',
// trimmed and lower-cased. "" stays "".
func Of(ct string) string {
	if ct == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
