package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Fuzz targets for every parser that reads upstream bytes: the referrers index decoder, the tag list
// decoder, the token answer, the WWW-Authenticate challenge and the Link header. scripts/fuzz.sh finds
// them by name.

// FuzzDecodeIndex: decodeIndex never panics; what it accepts is valid JSON whose exact-key members say
// schemaVersion 2, and every manifests entry reaches add exactly once; the accumulator keeps only
// distinct valid descriptors, within its entry cap, and takes back what a rejected document added.
func FuzzDecodeIndex(f *testing.F) {
	d := digest.FromString("a").String()
	for _, s := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"m","digest":"` + d + `","size":1}]}`,
		`{"schemaVersion":2,"manifests":null}`, `{"schemaVersion":2,"manifests":[1,"x",{},null]}`,
		`{"schemaVersion":2,"schemaVersion":2}`, `{"schemaVersion":2,"annotations":{"a":[1,{"b":2}]}}`,
		`{"schemaVersion":2} {}`, `{"schemaVersion":"2"}`, `[]`, ``, `{"schemaVersion":2,"manifests":[{"digest":"` + d + `","size":-1}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries int
		err := decodeIndex(bytes.NewReader(data), func(json.RawMessage) error { entries++; return nil })
		if err != nil {
			var fe *formatError
			if !errors.As(err, &fe) {
				t.Fatalf("error of an in-memory body is not a format error: %v", err)
			}
		} else {
			if !json.Valid(data) {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			var ref struct {
				SchemaVersion int               `json:"schemaVersion"`
				Manifests     []json.RawMessage `json:"manifests"`
			}
			if err := json.Unmarshal(data, &ref); err != nil || ref.SchemaVersion != 2 || len(ref.Manifests) != entries {
				t.Fatalf("accepted %q: reference decode err %v, version %d, %d entries, decoder saw %d", data, err, ref.SchemaVersion, len(ref.Manifests), entries)
			}
		}

		acc := &indexAccumulator{descs: nil, seen: map[digest.Digest]bool{}, budget: newBudget(1<<20, "fuzz"), maxEntries: 3}
		aerr := acc.decodeFrom(bytes.NewReader(data))
		seen := map[digest.Digest]bool{}
		for _, desc := range acc.descs {
			if desc.Digest.Validate() != nil || desc.Size < 0 || seen[desc.Digest] {
				t.Fatalf("kept an invalid or duplicate descriptor %+v", desc)
			}
			seen[desc.Digest] = true
		}
		if len(acc.descs) > 3 {
			t.Fatalf("kept %d descriptors over the cap of 3", len(acc.descs))
		}
		var fe *formatError
		if errors.As(aerr, &fe) && (len(acc.descs) != 0 || acc.dropped != 0) {
			t.Fatalf("a rejected document left %d descriptors", len(acc.descs))
		}
	})
}

// FuzzDecodeTagList: decodeTagList never panics; what it accepts is valid JSON, and every entry of its
// exact-key "tags" member reaches add, in order.
func FuzzDecodeTagList(f *testing.F) {
	for _, s := range []string{`{"name":"r","tags":["a","b"]}`, `{"tags":null}`, `{"tags":[1]}`, `{"tags":["a"],"tags":["b"]}`,
		`{"tags":["a"]} x`, `<html>`, `{"child":{"tags":["x"]},"tags":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []string
		err := decodeTagList(bytes.NewReader(data), func(tag string) error { got = append(got, tag); return nil })
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var ref map[string]json.RawMessage
		if err := json.Unmarshal(data, &ref); err != nil {
			t.Fatalf("accepted %q, not an object: %v", data, err)
		}
		var want []string
		if raw, ok := ref["tags"]; ok {
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("accepted %q whose tags are not strings: %v", data, err)
			}
		}
		if strings.Join(want, "\x00") != strings.Join(got, "\x00") || len(want) != len(got) {
			t.Fatalf("decoded %q, reference %q", got, want)
		}
	})
}

// FuzzParseTokenResponse: a token is only ever returned non-empty and sendable in a header, with a
// lifetime of (0, 1h].
func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{`{"token":"abc","expires_in":300}`, `{"access_token":"x"}`, `{"token":"a\r\nb"}`,
		`{"token":"t","expires_in":99999999999999}`, `{"token":"t","expires_in":-5}`, `null`, `{"token":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, ttl, err := parseTokenResponse(data)
		if err != nil {
			if KindOf(err) != Invalid {
				t.Fatalf("error of kind %v: %v", KindOf(err), err)
			}
			return
		}
		if tok == "" || !validToken(tok) || ttl <= 0 || ttl > time.Hour {
			t.Fatalf("token %q ttl %v from %q", tok, ttl, data)
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+tok)
		if strings.ContainsAny(h.Get("Authorization"), "\r\n") {
			t.Fatalf("token %q breaks the header", tok)
		}
	})
}

// FuzzParseChallenges: never panics; the scheme answered is bearer or basic; a well-formed Bearer
// challenge built from quoted values without quotes or backslashes yields those values.
func FuzzParseChallenges(f *testing.F) {
	f.Add(`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"`, "https://r/t", "svc")
	f.Add(`Basic realm="x", Bearer realm="y"`, "", "")
	f.Add(`Bearer realm="a\"b",,,=,"`, "r", "s")
	f.Fuzz(func(t *testing.T, raw, realm, service string) {
		if ch, ok := parseChallenges([]string{raw}); ok && ch.scheme != "bearer" && ch.scheme != "basic" {
			t.Fatalf("scheme %q answered", ch.scheme)
		}
		if strings.ContainsAny(realm+service, "\"\\") {
			return
		}
		ch, ok := parseChallenges([]string{`Bearer realm="` + realm + `", service="` + service + `"`})
		if !ok || ch.scheme != "bearer" || ch.realm != realm || ch.service != service {
			t.Fatalf("realm %q service %q parsed as %+v (ok %v)", realm, service, ch, ok)
		}
	})
}

// FuzzLink: never panics; a next link is only ever returned on the registry's origin, without user
// information; a single well-formed rel="next" link is found.
func FuzzLink(f *testing.F) {
	f.Add(`</v2/r/tags/list?last=b>; rel="next"`, "/v2/r/tags/list?n=2")
	f.Add(`<https://evil.example/x>; rel=next, </ok>; rel="prev"`, "/")
	f.Add(`<//evil.example/x>; rel="next"`, "/v2/")
	f.Add(`<http://registry.example:443/x>; rel="next"`, "/v2/")
	f.Add(`<https://user@registry.example/x>; rel="next"`, "/v2/")
	origin := &url.URL{Scheme: "https", Host: "registry.example"}
	f.Fuzz(func(t *testing.T, header, path string) {
		base, err := origin.Parse(path)
		if err != nil || !sameOrigin(origin, base) {
			return
		}
		if raw, ok := findNext([]string{header}); ok {
			if next, err := resolveLink(raw, base, origin); err == nil && (!sameOrigin(origin, next) || next.User != nil || next.Fragment != "") {
				t.Fatalf("link %q from %q resolved off the origin: %s", raw, header, next)
			}
		}
		target := strings.TrimSpace(path)
		if strings.ContainsAny(target, "<>") || target == "" {
			return
		}
		if got, ok := findNext([]string{"<" + path + `>; rel="next"`}); !ok || got != target {
			t.Fatalf("link to %q found as %q (ok %v)", path, got, ok)
		}
	})
}
