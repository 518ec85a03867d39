package api

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeListsEveryEndpoint keeps README.md's "Harbor API endpoints" table true: every route
// registered in routes() is in the table, and the table lists nothing else.
func TestReadmeListsEveryEndpoint(t *testing.T) {
	var routes []string
	for _, f := range sourceFiles(t) {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range regexp.MustCompile(`HandleFunc\("([A-Z]+) "\+Prefix\+"([^"]+)"`).FindAllStringSubmatch(string(src), -1) {
			routes = append(routes, m[1]+" "+Prefix+m[2])
		}
	}
	require.NotEmpty(t, routes, "no routes found in the package")

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
	require.Equal(t, routes, listed, "README.md's Harbor API endpoints table and routes() differ")
}
