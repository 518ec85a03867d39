package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// duplicateKey returns the first key that appears twice in one object of the JSON document body, at any
// depth, and "" when there is none. body must be valid JSON.
//
// Parsers disagree on duplicate keys: Go's encoding/json keeps the last value, others the first or
// refuse. A manifest with a duplicate "digest", "size" or "subject" could mean one thing to Berth's
// validation and another to the client that pulls it, so such manifests are refused outright.
func duplicateKey(body []byte) (string, error) {
	type frame struct {
		object  bool
		wantKey bool // in an object: the next token is a key (or the closing brace)
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if key, ok := tok.(string); ok {
				if _, dup := stack[n-1].keys[key]; dup {
					return key, nil
				}
				stack[n-1].keys[key] = struct{}{}
				stack[n-1].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
