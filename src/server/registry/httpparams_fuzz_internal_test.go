package registry

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"testing"
)

// Run one with, e.g., go test ./src/server/registry -run '^$' -fuzz '^FuzzParseRange$' -fuzztime 30s

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=5-", "bytes=-5", "bytes=-0", "bytes=9-1", "bytes=0-1,2-3", "Bytes=1-1", "bytes=99999999999999999999-"} {
		f.Add(s, int64(100))
	}
	f.Add("bytes=0-0", int64(0))
	f.Add("bytes=0-0", int64(-1))
	f.Fuzz(func(t *testing.T, header string, size int64) {
		start, end, err := rangeBounds(header, size)
		if err != nil {
			if !errors.Is(err, errRangeInvalid) && !errors.Is(err, errRangeNotSatisfiable) {
				t.Fatalf("rangeBounds(%q, %d) = %v, no sentinel", header, size, err)
			}
			return
		}
		if start < 0 || start > end || end >= size {
			t.Fatalf("rangeBounds(%q, %d) = %d-%d, outside the representation", header, size, start, end)
		}
		s2, e2, err := rangeBounds(fmt.Sprintf("bytes=%d-%d", start, end), size)
		if err != nil || s2 != start || e2 != end {
			t.Fatalf("rangeBounds(%q, %d) = %d-%d does not round-trip: %d-%d %v", header, size, start, end, s2, e2, err)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-99", "bytes=0-99", "5-1", "bytes 0-9/10", "-", "0-", "99999999999999999999-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		start, end, err := contentRangeBounds(header)
		if err != nil {
			if !errors.Is(err, errContentRangeInvalid) {
				t.Fatalf("contentRangeBounds(%q) = %v, no sentinel", header, err)
			}
			return
		}
		if start < 0 || start > end || end == math.MaxInt64 {
			t.Fatalf("contentRangeBounds(%q) = %d-%d", header, start, end)
		}
		s2, e2, err := contentRangeBounds(fmt.Sprintf("%d-%d", start, end))
		if err != nil || s2 != start || e2 != end {
			t.Fatalf("contentRangeBounds(%q) = %d-%d does not round-trip: %d-%d %v", header, start, end, s2, e2, err)
		}
	})
}

func FuzzParsePagination(f *testing.F) {
	for _, s := range []string{"", "n=5", "n=-1", "n=5&last=x", "n=1&n=2", "n=99999999999999999999999", "n=%2B3"} {
		f.Add(s, 100)
	}
	f.Add("n=5", 0)
	f.Add("n=5", -3)
	f.Fuzz(func(t *testing.T, rawQuery string, maxN int) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		n, last, err := paginationParams(q, maxN)
		if err != nil {
			if !errors.Is(err, errPaginationInvalid) || n != 0 || last != "" {
				t.Fatalf("paginationParams(%q, %d) = %d %q %v", rawQuery, maxN, n, last, err)
			}
			return
		}
		if n < 0 || (maxN > 0 && n > maxN) {
			t.Fatalf("paginationParams(%q, %d) = %d, out of bounds", rawQuery, maxN, n)
		}
		if last != q.Get("last") {
			t.Fatalf("paginationParams(%q) last = %q, want %q", rawQuery, last, q.Get("last"))
		}
		if n > 0 {
			q.Set("n", fmt.Sprint(n))
			if n2, _, err := paginationParams(q, maxN); err != nil || n2 != n {
				t.Fatalf("n=%d does not round-trip: %d %v", n, n2, err)
			}
		}
	})
}
