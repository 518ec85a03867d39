package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// recordingRegistry is an upstream that asks for Basic credentials at /v2/ and records every
// Authorization header it receives ("" for a request without one).
type recordingRegistry struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func newRecordingRegistry(t *testing.T) *recordingRegistry {
	rr := &recordingRegistry{}
	rr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr.mu.Lock()
		rr.auth = append(rr.auth, r.Header.Get("Authorization"))
		rr.mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rr.Close)
	return rr
}

func (rr *recordingRegistry) received() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return slices.Clone(rr.auth)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestStoredSecretStaysWithItsURL drives the API with the real upstream client as pinger against two
// recording registries: the one a secret was saved with, and another. The other one never receives the
// stored secret, through a ping with a replaced URL or through an update that moves the registry.
func TestStoredSecretStaysWithItsURL(t *testing.T) {
	saved, other := newRecordingRegistry(t), newRecordingRegistry(t)
	e := newEnv(t)
	creds, err := admin.NewCredentials(e.box, RegistryPingerFunc(func(ctx context.Context, r meta.Registry) error {
		c, err := upstream.NewClient(upstream.Endpoint{URL: r.URL, Type: r.Type, Username: r.AccessKey, Password: r.AccessSecret},
			upstream.Options{})
		if err != nil {
			return err
		}
		return c.Ping(ctx)
	}), nil)
	require.NoError(t, err)
	e.api.creds = creds
	loc := e.createRegistry("up", saved.URL, "stored-secret")
	id := itoa(idOf(t, loc))
	require.Contains(t, saved.received(), basic("user", "stored-secret"), "the saved registry got the secret: the recorder works")

	refused := []struct{ name, method, path, body string }{
		{"ping by id at another url", http.MethodPost, registries + "/ping", `{"id":` + id + `,"url":"` + other.URL + `"}`},
		{"ping by id at another url with the mask", http.MethodPost, registries + "/ping",
			`{"id":` + id + `,"url":"` + other.URL + `","credential":{"access_key":"user","access_secret":"*****"}}`},
		{"update to another url", http.MethodPut, loc, `{"url":"` + other.URL + `"}`},
		{"update to another url with the mask", http.MethodPut, loc, `{"url":"` + other.URL + `","access_secret":"*****"}`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			w := e.must(req{method: tc.method, path: tc.path, body: tc.body}, http.StatusBadRequest)
			require.Contains(t, w.Body.String(), "credential required when the URL changes")
			require.Empty(t, other.received(), "the other registry was not contacted")
			got, err := e.store.GetRegistry(context.Background(), idOf(t, loc))
			require.NoError(t, err)
			require.Equal(t, saved.URL, got.URL)
		})
	}

	e.must(req{method: http.MethodPost, path: registries + "/ping", body: `{"id":` + id + `}`}, http.StatusOK)
	require.Equal(t, basic("user", "stored-secret"), saved.received()[len(saved.received())-1])

	// With a credential of its own, the move goes through, and only that credential reaches the new URL.
	e.must(req{method: http.MethodPut, path: loc, body: `{"url":"` + other.URL + `","access_secret":"other-secret"}`}, http.StatusOK)
	e.must(req{method: http.MethodPost, path: registries + "/ping", body: `{"id":` + id + `}`}, http.StatusOK)
	for _, a := range other.received() {
		require.NotEqual(t, basic("user", "stored-secret"), a)
	}
	require.Contains(t, other.received(), basic("user", "other-secret"))
}
