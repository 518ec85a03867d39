package cachekey_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
)

var storedAt = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

func sampleEntry() cachekey.Entry {
	return cachekey.Entry{
		StoredAt:       storedAt,
		FiltersApplied: []string{"artifactType"},
		Source:         cachekey.SourceReferrersAPI,
		Index:          []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	tests := map[string]cachekey.Entry{
		"full": sampleEntry(),
		"minimal": {
			StoredAt: time.Unix(0, 1),
		},
		"no freshness, tag schema": {
			StoredAt: storedAt.In(time.FixedZone("CET", 3600)), // any zone; decoded in UTC
			Source:   cachekey.SourceTagSchema,
			Index:    bytes.Repeat([]byte("x"), 1<<20),
		},
		"many filters": {
			StoredAt:       storedAt,
			FiltersApplied: []string{"artifactType", "annotation", strings.Repeat("f", cachekey.MaxStringLen)},
			Source:         strings.Repeat("s", cachekey.MaxStringLen),
			Index:          []byte{},
		},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := cachekey.Encode(e)
			require.NoError(t, err)
			got, err := cachekey.Decode(b)
			require.NoError(t, err)
			require.True(t, e.StoredAt.Equal(got.StoredAt))
			require.Equal(t, time.UTC, got.StoredAt.Location())
			require.Equal(t, len(e.FiltersApplied), len(got.FiltersApplied))
			if len(e.FiltersApplied) > 0 {
				require.Equal(t, e.FiltersApplied, got.FiltersApplied)
			}
			require.Equal(t, e.Source, got.Source)
			require.True(t, bytes.Equal(e.Index, got.Index))
			again, err := cachekey.Encode(got)
			require.NoError(t, err)
			require.Equal(t, b, again, "one encoding per entry")
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	mutate := func(f func(*cachekey.Entry)) cachekey.Entry {
		e := sampleEntry()
		f(&e)
		return e
	}
	tests := map[string]cachekey.Entry{
		"zero stored_at":         mutate(func(e *cachekey.Entry) { e.StoredAt = time.Time{} }),
		"stored_at at the epoch": mutate(func(e *cachekey.Entry) { e.StoredAt = time.Unix(0, 0) }),
		"stored_at after 2262":   mutate(func(e *cachekey.Entry) { e.StoredAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"too many filters":       mutate(func(e *cachekey.Entry) { e.FiltersApplied = make([]string, cachekey.MaxFilters+1) }),
		"empty filter":           mutate(func(e *cachekey.Entry) { e.FiltersApplied = []string{""} }),
		"long filter":            mutate(func(e *cachekey.Entry) { e.FiltersApplied = []string{strings.Repeat("f", 256)} }),
		"long source":            mutate(func(e *cachekey.Entry) { e.Source = strings.Repeat("s", 256) }),
		"source not UTF-8":       mutate(func(e *cachekey.Entry) { e.Source = "\xff" }),
		"filter not UTF-8":       mutate(func(e *cachekey.Entry) { e.FiltersApplied = []string{"a\xc3"} }),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := cachekey.Encode(e)
			require.Error(t, err)
		})
	}
}

// reseal replaces the checksum of b (a full encoding) by the right one for its altered payload, so
// that a test reaches the check it means to.
func reseal(b []byte) []byte {
	payload := b[:len(b)-sha256.Size]
	sum := sha256.Sum256(payload)
	return append(append([]byte{}, payload...), sum[:]...)
}

func TestDecodeRejects(t *testing.T) {
	good, err := cachekey.Encode(sampleEntry())
	require.NoError(t, err)
	alter := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	const (
		versionAt    = 4
		storedAtAt   = 5
		freshAt      = 13
		sourceLenAt  = 21
		filterCntAt  = 22 + len(cachekey.SourceReferrersAPI)
		filterLenAt  = filterCntAt + 1
		indexLenAt   = filterLenAt + 1 + len("artifactType")
		indexStartAt = indexLenAt + 4
	)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"nil", nil, cachekey.ErrTruncated},
		{"magic only", good[:4], cachekey.ErrTruncated},
		{"bad magic", alter(func(b []byte) []byte { b[0] = 'X'; return b }), cachekey.ErrMalformed},
		{"JSON from an older Berth", []byte(`{"body":"..."}`), cachekey.ErrMalformed},
		{"version 0", alter(func(b []byte) []byte { b[versionAt] = 0; return reseal(b) }), cachekey.ErrUnknownVersion},
		{"version 2", alter(func(b []byte) []byte { b[versionAt] = 2; return reseal(b) }), cachekey.ErrUnknownVersion},
		{"version 2, short", []byte("BRRF\x02"), cachekey.ErrUnknownVersion},
		{"cut in the header", good[:15], cachekey.ErrTruncated},
		{"cut in the index", good[:indexStartAt+3], cachekey.ErrTruncated},
		{"cut in the checksum", good[:len(good)-1], cachekey.ErrTruncated},
		{"no checksum", good[:len(good)-sha256.Size], cachekey.ErrTruncated},
		{"trailing byte", append(append([]byte{}, good...), 0), cachekey.ErrMalformed},
		{"index byte flipped", alter(func(b []byte) []byte { b[indexStartAt] ^= 1; return b }), cachekey.ErrChecksum},
		{"stored_at flipped", alter(func(b []byte) []byte { b[storedAtAt+7] ^= 1; return b }), cachekey.ErrChecksum},
		{"checksum flipped", alter(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), cachekey.ErrChecksum},
		{"index length too large", alter(func(b []byte) []byte { b[indexLenAt] = 0xff; return b }), cachekey.ErrTruncated},
		{"stored_at zero", alter(func(b []byte) []byte {
			copy(b[storedAtAt:], make([]byte, 8))
			return reseal(b)
		}), cachekey.ErrMalformed},
		{"fresh_until negative", alter(func(b []byte) []byte { b[freshAt] = 0x80; return reseal(b) }), cachekey.ErrMalformed},
		{"fresh_until set (reserved)", alter(func(b []byte) []byte { b[freshAt+7] = 1; return reseal(b) }), cachekey.ErrMalformed},
		{"too many filters", alter(func(b []byte) []byte { b[filterCntAt] = cachekey.MaxFilters + 1; return reseal(b) }), cachekey.ErrMalformed},
		{"empty filter", alter(func(b []byte) []byte {
			// filter of length 0 followed by the rest: the decoder must refuse it before reading on
			b[filterLenAt] = 0
			return reseal(b)
		}), cachekey.ErrMalformed},
		{"source not UTF-8", alter(func(b []byte) []byte { b[sourceLenAt+1] = 0xff; return reseal(b) }), cachekey.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cachekey.Decode(tc.data)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range []cachekey.Entry{
		sampleEntry(),
		{StoredAt: time.Unix(0, 1)},
		{StoredAt: storedAt, Source: cachekey.SourceTagSchema, FiltersApplied: []string{"a", "b"}, Index: []byte("{}")},
	} {
		b, err := cachekey.Encode(e)
		require.NoError(f, err)
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{})
	f.Add([]byte("BRRF\x01"))
	f.Add([]byte("BRRF\x02"))
	check := func(t *testing.T, data []byte) {
		e, err := cachekey.Decode(data) // must never panic
		if err != nil {
			for _, known := range []error{cachekey.ErrTruncated, cachekey.ErrMalformed, cachekey.ErrChecksum, cachekey.ErrUnknownVersion} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("Decode error of no documented kind: %v", err)
		}
		again, err := cachekey.Encode(e)
		if err != nil {
			t.Fatalf("Decode accepted an entry Encode refuses: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs: Decode accepted a non-canonical form")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
		// The checksum stops almost every mutation before the field checks matter; with a valid
		// checksum the fuzzer also explores what Decode accepts.
		if len(data) >= sha256.Size {
			check(t, reseal(data))
		}
	})
}
