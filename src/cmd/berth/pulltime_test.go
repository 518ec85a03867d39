package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content/local"
)

// TestPullTimeTracking: a manifest GET sets the artifact's pull_time (Harbor's artifact API) within a
// flush interval; with --pull-time-tracking=false it stays unset (checked after the server with
// tracking on has shown its pull and a whole flush interval has passed since the pull on the other).
func TestPullTimeTracking(t *testing.T) {
	pullTime := func(s *served, ref string) string {
		var a struct {
			PullTime string `json:"pull_time"`
		}
		require.NoError(t, json.Unmarshal(s.call(t, http.MethodGet, "/api/v2.0/projects/lib/repositories/app/artifacts/"+ref, nil, http.StatusOK), &a))
		return a.PullTime
	}
	var servers []*served
	var digests []string
	var pulled time.Time
	for _, args := range [][]string{nil, {"--pull-time-tracking=false"}} {
		s := startServe(t, nil, args...)
		s.call(t, http.MethodPost, "/api/v2.0/projects", map[string]any{"project_name": "lib"}, http.StatusCreated)
		c := s.client()
		for _, b := range [][]byte{[]byte(`{}`), []byte("layer")} {
			_, err := c.upload("lib/app", b, nil)
			require.NoError(t, err)
		}
		d, err := c.putImage("lib/app", "v1", []byte(`{}`), []byte("layer"))
		require.NoError(t, err)
		require.Contains(t, []string{"", "0001-01-01T00:00:00.000Z"}, pullTime(s, d.String()), "not pulled yet")
		c.read(t, "lib/app", "manifests", d)
		pulled = time.Now()
		servers, digests = append(servers, s), append(digests, d.String())
	}
	require.Eventually(t, func() bool { return !isZeroTime(pullTime(servers[0], digests[0])) }, 15*time.Second, 100*time.Millisecond,
		"tracking on: the pull is recorded within the flush interval")
	time.Sleep(time.Until(pulled.Add(local.DefaultPullFlushInterval + time.Second)))
	require.True(t, isZeroTime(pullTime(servers[1], digests[1])), "tracking off: no pull time")
}

func isZeroTime(s string) bool {
	t, err := time.Parse(time.RFC3339, s)
	return s == "" || (err == nil && t.IsZero())
}
