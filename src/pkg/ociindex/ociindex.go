// Package ociindex encodes the image index of a referrers answer, byte for byte as encoding/json would,
// without reflection: on a warm referrers request the reflection-based encoder costs more than the rest
// of the request.
package ociindex

import (
	"encoding/base64"
	"slices"
	"strconv"
	"unicode/utf8"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AppendReferrersIndex appends the JSON of an image index (schemaVersion 2, the index media type) holding
// manifests to dst, byte for byte what encoding/json's Marshal writes for the same ocispec.Index. It is
// the referrers answer's encoder. Descriptors with a platform are not handled: ok is false and dst is returned unchanged
// (referrer descriptors carry none; the caller then uses encoding/json).
func AppendReferrersIndex(dst []byte, manifests []ocispec.Descriptor) (out []byte, ok bool) {
	for i := range manifests {
		if manifests[i].Platform != nil {
			return dst, false
		}
	}
	b := append(dst, `{"schemaVersion":2,"mediaType":`...)
	b = appendJSONString(b, ocispec.MediaTypeImageIndex)
	b = append(b, `,"manifests":[`...)
	for i := range manifests {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendDescriptor(b, &manifests[i])
	}
	return append(b, "]}"...), true
}

// appendDescriptor writes d's fields in the struct's order with its omitempty rules (no platform).
func appendDescriptor(b []byte, d *ocispec.Descriptor) []byte {
	b = append(b, `{"mediaType":`...)
	b = appendJSONString(b, d.MediaType)
	b = append(b, `,"digest":`...)
	b = appendJSONString(b, string(d.Digest))
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, d.Size, 10)
	if len(d.URLs) > 0 {
		b = append(b, `,"urls":[`...)
		for i, u := range d.URLs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, u)
		}
		b = append(b, ']')
	}
	if len(d.Annotations) > 0 {
		keys := make([]string, 0, len(d.Annotations))
		for k := range d.Annotations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"annotations":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, d.Annotations[k])
		}
		b = append(b, '}')
	}
	if len(d.Data) > 0 {
		b = append(b, `,"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, d.Data)
		b = append(b, '"')
	}
	if d.ArtifactType != "" {
		b = append(b, `,"artifactType":`...)
		b = appendJSONString(b, d.ArtifactType)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// plainJSON marks the ASCII bytes encoding/json writes as they are (HTML-safe mode).
var plainJSON = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as a JSON string the way encoding/json does by default: HTML-safe (<, >
// and & escaped), U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainJSON[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
