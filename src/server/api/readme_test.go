package api

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeListsEveryEndpoint keeps README.md's "Harbor API endpoints" table true: every route of
// routeTable, whichever dependency it needs, is in the table, and the table lists nothing else.
func TestReadmeListsEveryEndpoint(t *testing.T) {
	var routes []string
	for _, g := range (&API{}).routeTable() {
		for _, rt := range g.routes {
			routes = append(routes, rt.method+" "+Prefix+rt.path)
		}
	}
	require.NotEmpty(t, routes, "no routes found in the table")

	readme, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## Harbor API endpoints\n")
	require.True(t, ok, "README.md has no Harbor API endpoints section")
	section, _, _ = strings.Cut(section, "\n## ")
	var listed []string
	row := regexp.MustCompile("(?m)^\\| `(/api/v2\\.0[^`]*)` \\| ([A-Z, ]+) \\|")
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for method := range strings.SplitSeq(m[2], ",") {
			listed = append(listed, strings.TrimSpace(method)+" "+m[1])
		}
	}
	slices.Sort(routes)
	slices.Sort(listed)
	require.Equal(t, routes, listed, "README.md's Harbor API endpoints table and routeTable differ")
}
