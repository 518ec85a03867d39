package referrers

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

func d(name string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(name), Size: 100, ArtifactType: "t/" + name}
}

func list(names ...string) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, len(names))
	for i, n := range names {
		out[i] = d(n)
	}
	return out
}

func TestMerge(t *testing.T) {
	var long []ocispec.Descriptor // longer than smallList: de-duplicated through the map
	for i := range smallList + 8 {
		long = append(long, d(fmt.Sprint("p", i)))
	}
	held := d("b")
	held.ArtifactType = "computed/locally"
	for _, tc := range []struct {
		name            string
		local, upstream []ocispec.Descriptor
		want            []ocispec.Descriptor
	}{
		{"both empty", nil, nil, []ocispec.Descriptor{}},
		{"local only", list("x", "y"), nil, list("x", "y")},
		{"upstream only", nil, list("a", "b"), list("a", "b")},
		{"local-only first, then upstream order", list("x"), list("a", "b"), list("x", "a", "b")},
		{"held entry keeps its upstream position with the local descriptor",
			[]ocispec.Descriptor{d("x"), held}, list("a", "b", "c"), []ocispec.Descriptor{d("x"), d("a"), held, d("c")}},
		{"duplicates within a side", list("x", "x"), list("a", "a"), list("x", "a")},
		{"upstream only with a duplicate", nil, list("a", "b", "a"), list("a", "b")},
		{"long upstream only with a duplicate", nil, append(long, d("p0")), long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, merge(tc.local, tc.upstream))
		})
	}
}

func TestStableOrder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		prev, fresh []ocispec.Descriptor
		want        []ocispec.Descriptor
	}{
		{"no previous answer", nil, list("c", "a", "b"), list("c", "a", "b")},
		{"reordered upstream keeps the previous order", list("a", "b", "c"), list("c", "b", "a"), list("a", "b", "c")},
		{"new entries first, removed ones gone", list("a", "b", "c"), list("b", "n", "a"), list("n", "a", "b")},
		{"everything new", list("a"), list("x", "y"), list("x", "y")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, stableOrder(tc.prev, tc.fresh))
		})
	}
}

func TestPage(t *testing.T) {
	all := list("a", "b", "c", "d", "e")
	cur := func(i int, name string) string { return itoa(i) + "." + digest.FromString(name).String() }
	for _, tc := range []struct {
		name     string
		list     []ocispec.Descriptor
		cursor   string
		n        int
		want     []ocispec.Descriptor
		wantNext string
	}{
		{"first page", all, "", 2, list("a", "b"), cur(1, "b")},
		{"middle page", all, cur(1, "b"), 2, list("c", "d"), cur(3, "d")},
		{"last page", all, cur(3, "d"), 2, list("e"), ""},
		{"exact end", all, cur(2, "c"), 2, list("d", "e"), ""},
		{"no limit", all, "", 0, all, ""},
		{"cursor entry moved", list("x", "a", "b", "c", "d", "e"), cur(1, "b"), 2, list("c", "d"), cur(4, "d")},
		{"cursor entry gone: resume at its index", list("a", "c", "d", "e"), cur(1, "b"), 2, list("c", "d"), cur(2, "d")},
		{"cursor past the end", all, cur(9, "zz"), 2, []ocispec.Descriptor{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := page(tc.list, tc.cursor, tc.n)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantNext, next)
		})
	}
	for _, bad := range []string{"x", "1", "-1." + digest.FromString("a").String(), "1.sha256:zz", "1.", ".sha256:"} {
		_, _, err := page(all, bad, 2)
		require.True(t, errcode.IsCode(err, errcode.ErrPaginationInvalid), "%q: %v", bad, err)
	}
}

func TestDoubtful(t *testing.T) {
	m := ocispec.MediaTypeImageManifest
	for _, tc := range []struct {
		desc ocispec.Descriptor
		want bool
	}{
		{ocispec.Descriptor{MediaType: m, ArtifactType: ""}, true},
		{ocispec.Descriptor{MediaType: m, ArtifactType: ocispec.MediaTypeEmptyJSON}, true},
		{ocispec.Descriptor{MediaType: m, ArtifactType: "application/vnd.cncf.notary.signature"}, false},
		{ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, ArtifactType: ""}, false},
		{ocispec.Descriptor{MediaType: "application/vnd.docker.distribution.manifest.v2+json"}, false},
	} {
		require.Equal(t, tc.want, doubtful(tc.desc), "%+v", tc.desc)
	}
}

func itoa(i int) string {
	return strconv.Itoa(i)
}
