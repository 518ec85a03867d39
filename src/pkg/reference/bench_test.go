package reference

import (
	"testing"
)

var benchPaths = []string{
	"/v2/",
	"/v2/library/busybox/manifests/latest",
	"/v2/library/busybox/manifests/sha256:" + hex64,
	"/v2/proj/team/app/blobs/sha256:" + hex64,
	"/v2/proj/team/app/blobs/uploads/0123456789abcdef0123456789abcdef",
	"/v2/proj/team/app/referrers/sha256:" + hex64,
	"/v2/proj/team/app/tags/list",
}

var sinkRoute Route

// BenchmarkParseV2Path measures the scanner on typical request paths; it must not allocate.
func BenchmarkParseV2Path(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r, err := ParseV2Path(benchPaths[i%len(benchPaths)])
		if err != nil {
			b.Fatal(err)
		}
		sinkRoute = r
	}
}

// BenchmarkRegexpRouter is the same work done by the regular expressions in fuzz_test.go, for
// comparison.
func BenchmarkRegexpRouter(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		kinds, _ := regexpRoute(benchPaths[i%len(benchPaths)])
		if len(kinds) != 1 {
			b.Fatal(kinds)
		}
	}
}

func TestParseV2PathDoesNotAllocate(t *testing.T) {
	for _, p := range benchPaths {
		allocs := testing.AllocsPerRun(100, func() {
			sinkRoute, _ = ParseV2Path(p)
		})
		if allocs != 0 {
			t.Errorf("ParseV2Path(%q) allocates %v times", p, allocs)
		}
	}
}
