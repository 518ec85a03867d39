package cachekey

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// EntryVersion is the envelope version Encode writes and the only one Decode accepts.
const EntryVersion = 1

// Limits of the envelope's small fields.
const (
	MaxFilters   = 16  // entries in FiltersApplied
	MaxStringLen = 255 // bytes in Source and in each filter name
)

// Sources of a cached index, spelled as upstream.Source's String (and "not-found" for an upstream
// NotFound kept as an empty list).
const (
	SourceReferrersAPI = "referrers-api" // the upstream's GET /v2/<name>/referrers/<digest>
	SourceTagSchema    = "tag-schema"    // the upstream's <alg>-<ref> tag index (fallback)
)

// Decode errors. Any error from Decode means the stored bytes are unusable: count it and delete the
// entry.
var (
	ErrUnknownVersion = errors.New("cachekey: unknown referrers cache entry version")
	ErrChecksum       = errors.New("cachekey: referrers cache entry checksum mismatch")
	ErrTruncated      = errors.New("cachekey: referrers cache entry truncated")
	ErrMalformed      = errors.New("cachekey: malformed referrers cache entry")
)

// Entry is one cached upstream referrers answer.
type Entry struct {
	// StoredAt is when the answer was fetched from the upstream. Required.
	StoredAt time.Time
	// FiltersApplied lists the filters the index already reflects (as in OCI-Filters-Applied), e.g.
	// ["artifactType"]; empty when the index is unfiltered.
	FiltersApplied []string
	// Source says how the index was obtained, e.g. SourceReferrersAPI or SourceTagSchema.
	Source string
	// Index is the image index (JSON) listing the referrers, byte for byte as it will be served.
	Index []byte
}

// The v1 layout, integers big-endian:
//
//	magic "BRRF" (4) | version 1 (1) | stored_at Unix ns > 0 (8) | fresh_until 0 (8, reserved)
//	| source length (1) | source | filter count (1) | per filter: length 1..255 (1), name
//	| index length (4) | index | SHA-256 of every preceding byte (32)
//
// Every field has exactly one encoding, so Encode(Decode(b)) == b for every b Decode accepts.
var magic = [4]byte{'B', 'R', 'R', 'F'}

const checksumLen = sha256.Size

// maxTime is the last instant whose Unix nanoseconds fit an int64.
var maxTime = time.Unix(0, math.MaxInt64)

// Encode returns the stored form of e. It fails when a field is out of range: StoredAt zero or outside
// 1970..2262, more than MaxFilters filters, an empty filter name,
// a string longer than MaxStringLen or not UTF-8, or an index of 4 GiB or more.
func Encode(e Entry) ([]byte, error) {
	storedAt, err := unixNano("stored_at", e.StoredAt)
	if err != nil {
		return nil, err
	}
	if len(e.FiltersApplied) > MaxFilters {
		return nil, fmt.Errorf("cachekey: %d filters, at most %d", len(e.FiltersApplied), MaxFilters)
	}
	if err := checkString("source", e.Source, true); err != nil {
		return nil, err
	}
	for _, f := range e.FiltersApplied {
		if err := checkString("filter", f, false); err != nil {
			return nil, err
		}
	}
	if uint64(len(e.Index)) > math.MaxUint32 {
		return nil, fmt.Errorf("cachekey: index of %d bytes is too large", len(e.Index))
	}

	size := 4 + 1 + 8 + 8 + 1 + len(e.Source) + 1 + 4 + len(e.Index) + checksumLen
	for _, f := range e.FiltersApplied {
		size += 1 + len(f)
	}
	b := make([]byte, 0, size)
	b = append(b, magic[:]...)
	b = append(b, EntryVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(storedAt))
	b = binary.BigEndian.AppendUint64(b, 0) // fresh_until: reserved, freshness is decided at read time
	b = append(b, byte(len(e.Source)))
	b = append(b, e.Source...)
	b = append(b, byte(len(e.FiltersApplied)))
	for _, f := range e.FiltersApplied {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Index)))
	b = append(b, e.Index...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

func unixNano(name string, t time.Time) (int64, error) {
	if !t.After(time.Unix(0, 0)) || t.After(maxTime) {
		return 0, fmt.Errorf("cachekey: %s %v outside 1970..2262", name, t)
	}
	return t.UnixNano(), nil
}

func checkString(name, s string, emptyOK bool) error {
	switch {
	case s == "" && !emptyOK:
		return fmt.Errorf("cachekey: empty %s", name)
	case len(s) > MaxStringLen:
		return fmt.Errorf("cachekey: %s of %d bytes, at most %d", name, len(s), MaxStringLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("cachekey: %s is not UTF-8", name)
	}
	return nil
}

// Decode parses data written by Encode. It rejects, with the errors above, data of another version,
// data cut short or with bytes after the checksum, fields outside Encode's ranges, and data whose
// checksum does not match. On success Index aliases data.
func Decode(data []byte) (Entry, error) {
	r := reader{b: data}
	m, ok := r.take(4)
	if !ok {
		return Entry{}, ErrTruncated
	}
	if !bytes.Equal(m, magic[:]) {
		return Entry{}, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	v, ok := r.byte()
	if !ok {
		return Entry{}, ErrTruncated
	}
	if v != EntryVersion {
		return Entry{}, fmt.Errorf("%w %d", ErrUnknownVersion, v)
	}

	var e Entry
	storedAt, ok1 := r.uint64()
	freshUntil, ok2 := r.uint64()
	if !ok1 || !ok2 {
		return Entry{}, ErrTruncated
	}
	if storedAt == 0 || storedAt > math.MaxInt64 {
		return Entry{}, fmt.Errorf("%w: time out of range", ErrMalformed)
	}
	if freshUntil != 0 { // reserved: Encode writes 0, so any other value has no encoding
		return Entry{}, fmt.Errorf("%w: fresh_until set", ErrMalformed)
	}
	e.StoredAt = time.Unix(0, int64(storedAt)).UTC()

	source, err := r.string(true)
	if err != nil {
		return Entry{}, err
	}
	e.Source = source
	n, ok := r.byte()
	if !ok {
		return Entry{}, ErrTruncated
	}
	if n > MaxFilters {
		return Entry{}, fmt.Errorf("%w: %d filters", ErrMalformed, n)
	}
	for range n {
		f, err := r.string(false)
		if err != nil {
			return Entry{}, err
		}
		e.FiltersApplied = append(e.FiltersApplied, f)
	}
	indexLen, ok := r.uint32()
	if !ok {
		return Entry{}, ErrTruncated
	}
	if e.Index, ok = r.take(int(indexLen)); !ok {
		return Entry{}, ErrTruncated
	}

	payloadLen := r.off
	sum, ok := r.take(checksumLen)
	if !ok {
		return Entry{}, ErrTruncated
	}
	if r.off != len(data) {
		return Entry{}, fmt.Errorf("%w: %d bytes after the checksum", ErrMalformed, len(data)-r.off)
	}
	if want := sha256.Sum256(data[:payloadLen]); !bytes.Equal(sum, want[:]) {
		return Entry{}, ErrChecksum
	}
	return e, nil
}

// reader reads fields from b; every method reports false when b is too short.
type reader struct {
	b   []byte
	off int
}

func (r *reader) take(n int) ([]byte, bool) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, false
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s, true
}

func (r *reader) byte() (byte, bool) {
	s, ok := r.take(1)
	if !ok {
		return 0, false
	}
	return s[0], true
}

func (r *reader) uint32() (uint32, bool) {
	s, ok := r.take(4)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint32(s), true
}

func (r *reader) uint64() (uint64, bool) {
	s, ok := r.take(8)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint64(s), true
}

// string reads a length-prefixed UTF-8 string; emptyOK says whether length 0 is allowed.
func (r *reader) string(emptyOK bool) (string, error) {
	n, ok := r.byte()
	if !ok {
		return "", ErrTruncated
	}
	if n == 0 && !emptyOK {
		return "", fmt.Errorf("%w: empty string", ErrMalformed)
	}
	s, ok := r.take(int(n))
	if !ok {
		return "", ErrTruncated
	}
	if !utf8.Valid(s) {
		return "", fmt.Errorf("%w: string is not UTF-8", ErrMalformed)
	}
	return string(s), nil
}
