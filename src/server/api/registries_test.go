package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/secret"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

const registries = "/api/v2.0/registries"

type registryOut struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	URL           string `json:"url"`
	Insecure      bool   `json:"insecure"`
	Description   string `json:"description"`
	CACertificate string `json:"ca_certificate"`
	Credential    struct {
		Type         string `json:"type"`
		AccessKey    string `json:"access_key"`
		AccessSecret string `json:"access_secret"`
	} `json:"credential"`
	Status       string `json:"status"`
	CreationTime string `json:"creation_time"`
	UpdateTime   string `json:"update_time"`
}

func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// storedSecret opens the sealed secret of a stored registry.
func (e *env) storedSecret(id int64) (sealed, plain string) {
	e.t.Helper()
	r, err := e.store.GetRegistry(context.Background(), id)
	require.NoError(e.t, err)
	if r.AccessSecret == "" {
		return "", ""
	}
	require.True(e.t, secret.IsSealed(r.AccessSecret), r.AccessSecret)
	plain, err = e.box.Open(r.AccessSecret)
	require.NoError(e.t, err)
	return r.AccessSecret, plain
}

func TestCreateRegistry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		ca := testCA(t)
		caJSON := strings.ReplaceAll(ca, "\n", `\n`)
		cases := []createRegistryCase{
			{name: "docker hub with credential", status: 201,
				body: `{"name":"hub","type":"docker-hub","url":"https://hub.docker.com/","insecure":false,"description":"d",
					"credential":{"type":"basic","access_key":"me","access_secret":"hunter2-very-secret"}}`,
				check: func(t *testing.T, e *env, got registryOut) {
					require.Equal(t, "https://hub.docker.com", got.URL, "trailing slash removed")
					require.Equal(t, "docker-hub", got.Type)
					require.Equal(t, "d", got.Description)
					require.Equal(t, "basic", got.Credential.Type)
					require.Equal(t, "me", got.Credential.AccessKey)
					require.Equal(t, "*****", got.Credential.AccessSecret)
					require.Equal(t, "healthy", got.Status)
					sealed, plain := e.storedSecret(got.ID)
					require.NotContains(t, sealed, "hunter2")
					require.Equal(t, "hunter2-very-secret", plain)
					calls := e.pinger.Calls()
					require.Len(t, calls, 1)
					require.Equal(t, "hunter2-very-secret", calls[0].AccessSecret, "the pinger gets the plaintext")
				}},
			{name: "anonymous upstream", status: 201, body: `{"name":"ghcr","type":"github-ghcr","url":"https://ghcr.io"}`,
				check: func(t *testing.T, e *env, got registryOut) {
					require.Equal(t, "", got.Credential.AccessSecret)
					require.Equal(t, "basic", got.Credential.Type)
					sealed, _ := e.storedSecret(got.ID)
					require.Empty(t, sealed)
				}},
			{name: "flat credential fields", status: 201,
				body: `{"name":"flat","type":"harbor","url":"http://harbor.local:8080/","access_key":"k","access_secret":"flat-secret"}`,
				check: func(t *testing.T, e *env, got registryOut) {
					require.Equal(t, "k", got.Credential.AccessKey)
					_, plain := e.storedSecret(got.ID)
					require.Equal(t, "flat-secret", plain)
				}},
			{name: "ca certificate and insecure", status: 201,
				body: `{"name":"ca","type":"docker-registry","url":"https://r.local","insecure":true,"ca_certificate":"` + caJSON + `"}`,
				check: func(t *testing.T, e *env, got registryOut) {
					require.Equal(t, ca, got.CACertificate)
					require.True(t, got.Insecure)
				}},
			{name: "duplicate name", body: `{"name":"dup","type":"docker-registry","url":"https://a"}`, status: 409},
			{name: "unhealthy", body: `{"name":"down","type":"docker-registry","url":"https://down.example"}`, status: 400},
			{name: "missing name", body: `{"type":"docker-registry","url":"https://a"}`, status: 400},
			{name: "long name", body: `{"name":"` + strings.Repeat("n", 65) + `","type":"docker-registry","url":"https://a"}`, status: 400},
			{name: "unsupported type", body: `{"name":"x","type":"aws-ecr","url":"https://a"}`, status: 400},
			{name: "missing type", body: `{"name":"x","url":"https://a"}`, status: 400},
			{name: "oauth credential", body: `{"name":"x","type":"harbor","url":"https://a","credential":{"type":"oauth","access_key":"k"}}`, status: 400},
			{name: "bad ca", body: `{"name":"x","type":"harbor","url":"https://a","ca_certificate":"not pem"}`, status: 400},
			{name: "ca with trailing junk", body: `{"name":"x","type":"harbor","url":"https://a","ca_certificate":"` + caJSON + `junk"}`, status: 400},
		}
		for _, u := range []string{"", "registry.example.com", "ftp://r.example", "https://", "http://:80", "https://u:p@r.example",
			"https://r.example?x=1", "https://r.example#frag", "https://r.example/?"} {
			cases = append(cases, createRegistryCase{name: "url " + u, body: `{"name":"x","type":"docker-registry","url":"` + u + `"}`, status: 400})
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { tc.run(t, newEnv(t)) })
		}
	})
}

// createRegistryCase is one request of TestCreateRegistry: the body, the status it gets, and a check of
// the registry then read back.
type createRegistryCase struct {
	name   string
	body   string
	status int
	check  func(t *testing.T, e *env, got registryOut)
}

// run posts the body; a refused one stores nothing, a created one is checked as read back and no
// secret shows in any answer or log.
func (tc createRegistryCase) run(t *testing.T, e *env) {
	e.pinger.fail["https://down.example"] = errors.New("connection refused")
	if tc.status == 409 {
		e.createRegistry("dup", "https://a", "")
	}
	w := e.must(req{method: http.MethodPost, path: registries, body: tc.body}, tc.status)
	if tc.status != http.StatusCreated {
		require.NotEmpty(t, errCode(t, w))
		_, total, err := e.store.ListRegistries(context.Background(), "", 0, 10)
		require.NoError(t, err)
		want := int64(0)
		if tc.status == http.StatusConflict {
			want = 1
		}
		require.Equal(t, want, total, "nothing stored")
		return
	}
	loc := w.Header().Get("Location")
	require.Regexp(t, `^/api/v2\.0/registries/[0-9]+$`, loc)
	got := decode[registryOut](t, e.must(req{method: http.MethodGet, path: loc}, http.StatusOK))
	require.Equal(t, idOf(t, loc), got.ID)
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, got.CreationTime)
	tc.check(t, e, got)
	require.NotContains(t, e.bodies.String()+e.logs.String(), "hunter2")
}

// TestCreateRegistryUnhealthyMessage: the admin learns the kind of failure; the cause, which names
// internal addresses, is logged with the secret masked, and never sent.
func TestCreateRegistryUnhealthyMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		e.pinger.fail["https://down.example"] = &upstream.Error{Kind: upstream.Unauthorized, Status: 401,
			Err: errors.New("GET 10.20.30.40:443/v2/ for password s3cr3t-value")}
		e.pinger.fail["https://gone.example"] = &upstream.Error{Kind: upstream.Unavailable,
			Err: errors.New("dial tcp 10.20.30.41:443: connect: connection refused")}
		cases := []struct{ url, message, cause string }{
			{"https://down.example", "the registry is unhealthy: the registry refused the credentials (HTTP 401)",
				"10.20.30.40:443/v2/ for password *****"},
			{"https://gone.example", "the registry is unhealthy: the registry could not be reached", "dial tcp 10.20.30.41:443"},
		}
		for _, tc := range cases {
			w := e.must(req{method: http.MethodPost, path: registries, body: map[string]any{"name": "d", "type": "harbor",
				"url": tc.url, "credential": map[string]any{"access_key": "u", "access_secret": "s3cr3t-value"}}},
				http.StatusBadRequest)
			require.Equal(t, tc.message, decodeMessage(t, w))
			require.Contains(t, e.logs.String(), tc.cause, "the cause is logged")
		}
		require.NotContains(t, e.bodies.String(), "10.20.30.4")
		require.NotContains(t, e.bodies.String()+e.logs.String(), "s3cr3t-value")
	})
}

func TestGetAndListRegistries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		for _, n := range []string{"hub1", "hub2", "hub3", "other"} {
			e.createRegistry(n, "https://"+n+".example", "")
		}
		direct, err := e.store.CreateRegistry(context.Background(), &meta.Registry{Name: "zz-direct", Type: "harbor", URL: "https://z"})
		require.NoError(t, err)

		cases := []struct {
			name, path string
			status     int
			names      []string
			total      string
			link       string
		}{
			{"all", registries, 200, []string{"hub1", "hub2", "hub3", "other", "zz-direct"}, "5", ""},
			{"paged", registries + "?page=2&page_size=2", 200, []string{"hub3", "other"}, "5",
				`</api/v2.0/registries?page=1&page_size=2>; rel="prev" , </api/v2.0/registries?page=3&page_size=2>; rel="next"`},
			{"name filter", registries + "?name=hub", 200, []string{"hub1", "hub2", "hub3"}, "3", ""},
			{"bad page size", registries + "?page_size=0", 400, nil, "", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := e.must(req{method: http.MethodGet, path: tc.path}, tc.status)
				if tc.status != 200 {
					return
				}
				var names []string
				for _, r := range decode[[]registryOut](t, w) {
					names = append(names, r.Name)
				}
				require.Equal(t, tc.names, names)
				require.Equal(t, tc.total, w.Header().Get("X-Total-Count"))
				require.Equal(t, tc.link, w.Header().Get("Link"))
			})
		}

		got := decode[registryOut](t, e.must(req{method: http.MethodGet, path: registries + "/" + itoa(direct)}, http.StatusOK))
		require.Equal(t, "unknown", got.Status, "never checked since start")
		require.Equal(t, "NOT_FOUND", errCode(t, e.must(req{method: http.MethodGet, path: registries + "/999"}, http.StatusNotFound)))
		for _, bad := range []string{"x", "0", "-1", "1.5"} {
			require.Equal(t, "BAD_REQUEST", errCode(t, e.must(req{method: http.MethodGet, path: registries + "/" + bad}, http.StatusBadRequest)))
		}
	})
}

func TestUpdateRegistry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		cases := []updateRegistryCase{
			{name: "description only, no check", body: `{"description":"new"}`, status: 200, secret: "old-secret",
				checkJSON: func(t *testing.T, got registryOut) { require.Equal(t, "new", got.Description) }},
			{name: "masked secret keeps it", body: `{"credential":{"type":"basic","access_key":"user","access_secret":"*****"}}`,
				status: 200, secret: "old-secret"},
			{name: "flat masked secret keeps it", body: `{"access_secret":"*****","access_key":"user2"}`, status: 200,
				secret: "old-secret", pinged: true, pingWith: "old-secret",
				checkJSON: func(t *testing.T, got registryOut) { require.Equal(t, "user2", got.Credential.AccessKey) }},
			{name: "url change needs the credential again", body: `{"url":"https://new.example/"}`, status: 400, secret: "old-secret"},
			{name: "url change with the mask needs the credential again", body: `{"url":"https://new.example","access_secret":"*****"}`,
				status: 400, secret: "old-secret"},
			{name: "type change needs the credential again", body: `{"type":"harbor"}`, status: 400, secret: "old-secret"},
			{name: "insecure needs the credential again", body: `{"insecure":true}`, status: 400, secret: "old-secret"},
			{name: "url change with a credential", body: `{"url":"https://new.example/","access_secret":"new-secret"}`, status: 200,
				secret: "new-secret", resealed: true, pinged: true, pingWith: "new-secret",
				checkJSON: func(t *testing.T, got registryOut) { require.Equal(t, "https://new.example", got.URL) }},
			{name: "same url spelled differently keeps it", body: `{"url":"https://old.example/"}`, status: 200, secret: "old-secret"},
			{name: "new secret", body: `{"credential":{"access_secret":"new-secret"}}`, status: 200,
				secret: "new-secret", resealed: true, pinged: true, pingWith: "new-secret"},
			{name: "flat new secret", body: `{"access_secret":"flat-new"}`, status: 200,
				secret: "flat-new", resealed: true, pinged: true, pingWith: "flat-new"},
			{name: "clear secret", body: `{"access_secret":""}`, status: 200, secret: "", resealed: true, pinged: true, pingWith: "",
				checkJSON: func(t *testing.T, got registryOut) { require.Equal(t, "", got.Credential.AccessSecret) }},
			{name: "rename", body: `{"name":"renamed"}`, status: 200, secret: "old-secret",
				checkJSON: func(t *testing.T, got registryOut) { require.Equal(t, "renamed", got.Name) }},
			{name: "duplicate name", body: `{"name":"taken"}`, status: 409, secret: "old-secret"},
			{name: "unhealthy new url", body: `{"url":"https://down.example","access_secret":"new-secret"}`, status: 400, secret: "old-secret",
				pinged: true, pingWith: "new-secret"},
			{name: "invalid url", body: `{"url":"ftp://x"}`, status: 400, secret: "old-secret"},
			{name: "invalid type", body: `{"type":"quay"}`, status: 400, secret: "old-secret"},
			{name: "malformed", body: `{"url":`, status: 400, secret: "old-secret"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { tc.run(t, newEnv(t)) })
		}
		e := newEnv(t)
		require.Equal(t, "NOT_FOUND", errCode(t, e.must(req{method: http.MethodPut, path: registries + "/77", body: `{}`}, http.StatusNotFound)))
	})
}

// updateRegistryCase is one update of TestUpdateRegistry and what it must leave behind.
type updateRegistryCase struct {
	name      string
	body      string
	status    int
	secret    string // plaintext expected in the store afterwards
	resealed  bool   // the sealed value changed
	pinged    bool   // the upstream was checked (with the plaintext `pingWith`)
	pingWith  string
	checkJSON func(t *testing.T, got registryOut)
}

// run updates a registry saved with "old-secret" beside one named "taken" and checks the stored
// secret, the upstream checks, and that a refused update changes nothing.
func (tc updateRegistryCase) run(t *testing.T, e *env) {
	e.pinger.fail["https://down.example"] = errors.New("connection refused")
	e.createRegistry("taken", "https://t.example", "")
	loc := e.createRegistry("reg", "https://old.example", "old-secret")
	id := idOf(t, loc)
	sealedBefore, _ := e.storedSecret(id)
	before, err := e.store.GetRegistry(context.Background(), id)
	require.NoError(t, err)
	calls := len(e.pinger.Calls())

	e.must(req{method: http.MethodPut, path: loc, body: tc.body}, tc.status)

	sealed, plain := e.storedSecret(id)
	require.Equal(t, tc.secret, plain)
	require.Equal(t, tc.resealed, sealed != sealedBefore)
	newCalls := e.pinger.Calls()[calls:]
	if tc.pinged {
		require.Len(t, newCalls, 1)
		require.Equal(t, tc.pingWith, newCalls[0].AccessSecret)
	} else {
		require.Empty(t, newCalls)
	}
	after, err := e.store.GetRegistry(context.Background(), id)
	require.NoError(t, err)
	if tc.status != 200 {
		require.Equal(t, before, after, "a refused update changes nothing")
		return
	}
	if tc.checkJSON != nil {
		tc.checkJSON(t, decode[registryOut](t, e.must(req{method: http.MethodGet, path: loc}, http.StatusOK)))
	}
	require.NotContains(t, e.bodies.String()+e.logs.String(), "old-secret")
}

func TestDeleteRegistry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		used := e.createRegistry("used", "https://u.example", "s")
		free := e.createRegistry("free", "https://f.example", "s")
		e.createProject(map[string]any{"project_name": "proxy", "registry_id": idOf(t, used)})

		w := e.must(req{method: http.MethodDelete, path: used}, http.StatusPreconditionFailed)
		require.Equal(t, "PRECONDITION", errCode(t, w))
		e.must(req{method: http.MethodGet, path: used}, http.StatusOK)

		e.must(req{method: http.MethodDelete, path: free}, http.StatusOK)
		e.must(req{method: http.MethodGet, path: free}, http.StatusNotFound)
		e.must(req{method: http.MethodDelete, path: free}, http.StatusNotFound)

		e.must(req{method: http.MethodDelete, path: projects + "/proxy"}, http.StatusOK)
		e.must(req{method: http.MethodDelete, path: used}, http.StatusOK)
	})
}

func TestPingRegistry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		e.pinger.fail["https://down.example"] = errors.New("connection refused")
		good := idOf(t, e.createRegistry("good", "https://good.example", "good-secret"))
		bad := idOf(t, e.createRegistry("bad", "https://bad.example", "bad-secret"))
		// the registry goes down after it was created
		e.pinger.fail["https://bad.example"] = errors.New("503 Service Unavailable")
		undecryptable, err := e.store.CreateRegistry(context.Background(), &meta.Registry{
			Name: "rekeyed", Type: "harbor", URL: "https://r.example", AccessKey: "u", AccessSecret: sealWithOtherKey(t, "x")})
		require.NoError(t, err)

		cases := []struct {
			name     string
			body     string
			status   int
			code     string
			pingURL  string
			pingWith string
			status2  string // registry status afterwards, for ID pings
			id       int64
		}{
			{name: "by id", body: `{"id":` + itoa(good) + `}`, status: 200, pingURL: "https://good.example", pingWith: "good-secret",
				id: good, status2: "healthy"},
			{name: "by id, failing", body: `{"id":` + itoa(bad) + `}`, status: 400, code: "BAD_REQUEST", pingURL: "https://bad.example",
				pingWith: "bad-secret", id: bad, status2: "unhealthy"},
			{name: "by id with another secret", body: `{"id":` + itoa(good) + `,"access_secret":"candidate"}`, status: 200,
				pingURL: "https://good.example", pingWith: "candidate", id: good, status2: "healthy"},
			{name: "by id with the mask", body: `{"id":` + itoa(good) + `,"credential":{"access_secret":"*****"}}`, status: 200,
				pingURL: "https://good.example", pingWith: "good-secret"},
			{name: "by id, override does not set status", body: `{"id":` + itoa(bad) + `,"url":"https://good.example","access_secret":"x"}`,
				status: 200, pingURL: "https://good.example", pingWith: "x", id: bad, status2: "unhealthy"},
			{name: "by id at another url without a credential", body: `{"id":` + itoa(good) + `,"url":"https://elsewhere.example"}`,
				status: 400, code: "BAD_REQUEST"},
			{name: "by id at the same url spelled differently", body: `{"id":` + itoa(good) + `,"url":"https://good.example/"}`,
				status: 200, pingURL: "https://good.example", pingWith: "good-secret"},
			{name: "settings", body: `{"type":"docker-hub","url":"https://hub.example","credential":{"access_key":"a","access_secret":"b"}}`,
				status: 200, pingURL: "https://hub.example", pingWith: "b"},
			{name: "settings flat", body: `{"type":"docker-hub","url":"https://hub.example","credential_type":"basic","access_key":"a","access_secret":"c"}`,
				status: 200, pingURL: "https://hub.example", pingWith: "c"},
			{name: "settings failing", body: `{"type":"harbor","url":"https://down.example"}`, status: 400, code: "BAD_REQUEST",
				pingURL: "https://down.example"},
			{name: "missing url", body: `{"type":"harbor"}`, status: 400, code: "BAD_REQUEST"},
			{name: "missing type", body: `{"url":"https://x.example"}`, status: 400, code: "BAD_REQUEST"},
			{name: "invalid url", body: `{"type":"harbor","url":"x.example"}`, status: 400, code: "BAD_REQUEST"},
			{name: "unknown id", body: `{"id":999}`, status: 404, code: "NOT_FOUND"},
			{name: "secret sealed with another key", body: `{"id":` + itoa(undecryptable) + `}`, status: 500, code: "INTERNAL_SERVER_ERROR"},
			{name: "replacing an undecryptable secret works", body: `{"id":` + itoa(undecryptable) + `,"access_secret":"fresh"}`,
				status: 200, pingURL: "https://r.example", pingWith: "fresh"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				calls := len(e.pinger.Calls())
				w := e.must(req{method: http.MethodPost, path: registries + "/ping", body: tc.body}, tc.status)
				if tc.code != "" {
					require.Equal(t, tc.code, errCode(t, w))
				}
				newCalls := e.pinger.Calls()[calls:]
				if tc.pingURL == "" {
					require.Empty(t, newCalls)
				} else {
					require.Len(t, newCalls, 1)
					require.Equal(t, tc.pingURL, newCalls[0].URL)
					require.Equal(t, tc.pingWith, newCalls[0].AccessSecret)
				}
				if tc.id != 0 {
					got := decode[registryOut](t, e.must(req{method: http.MethodGet, path: registries + "/" + itoa(tc.id)}, http.StatusOK))
					require.Equal(t, tc.status2, got.Status)
				}
			})
		}
		require.Contains(t, e.logs.String(), "INTERNAL_SERVER_ERROR", "the 500 is logged")
		for _, s := range []string{"good-secret", "bad-secret", "candidate"} {
			require.NotContains(t, e.bodies.String()+e.logs.String(), s)
		}
	})
}

func sealWithOtherKey(t *testing.T, plain string) string {
	t.Helper()
	b, err := secret.NewBox(make([]byte, secret.KeySize))
	require.NoError(t, err)
	s, err := b.Seal(plain)
	require.NoError(t, err)
	return s
}
