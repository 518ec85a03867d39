package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// ociClient drives Berth's /v2/ API as admin, the way a push client does (for the GC race test).
type ociClient struct {
	base, pass string
}

func (s *served) client() *ociClient { return &ociClient{base: s.URL, pass: s.pass} }

// errBlobUnknown is a manifest push refused because a blob it names is not (or no longer) in the repository.
var errBlobUnknown = errors.New("MANIFEST_BLOB_UNKNOWN")

func (c *ociClient) do(method, target string, body []byte, header map[string]string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, nil, err
	}
	if !u.IsAbs() {
		target = c.base + target
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return nil, nil, err
	}
	req.SetBasicAuth("admin", c.pass)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// expect checks the status of a call.
func expect(resp *http.Response, b []byte, err error, want int) (*http.Response, error) {
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b)
	}
	return resp, nil
}

// call is do with a status check.
func (c *ociClient) call(method, target string, body []byte, header map[string]string, want int) (*http.Response, error) {
	resp, b, err := c.do(method, target, body, header)
	return expect(resp, b, err, want)
}

// withDigest appends the digest parameter to an upload location.
func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(d.String())
}

// upload pushes data as a blob of repo in chunks, calling between after the first one.
func (c *ociClient) upload(repo string, data []byte, between func()) (digest.Digest, error) {
	resp, err := c.call(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted) //nolint:bodyclose // do and call read and close the body
	if err != nil {
		return "", err
	}
	loc := resp.Header.Get("Location")
	d := digest.FromBytes(data)
	if between != nil && len(data) > 1 {
		half := len(data) / 2
		resp, err = c.call(http.MethodPatch, loc, data[:half], map[string]string{ //nolint:bodyclose // do and call read and close the body
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", half-1)}, http.StatusAccepted)
		if err != nil {
			return "", err
		}
		between()
		loc = resp.Header.Get("Location")
		data = data[half:]
	}
	_, err = c.call(http.MethodPut, withDigest(loc, d), data, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated) //nolint:bodyclose // do and call read and close the body
	return d, err
}

// mount asks for a cross-repository mount; false when Berth answered with an upload session instead.
func (c *ociClient) mount(dst, src string, d digest.Digest) (bool, error) {
	resp, b, err := c.do(http.MethodPost, "/v2/"+dst+"/blobs/uploads/?mount="+url.QueryEscape(d.String())+"&from="+url.QueryEscape(src), nil, nil) //nolint:bodyclose // do and call read and close the body
	switch {
	case err != nil:
		return false, err
	case resp.StatusCode == http.StatusCreated:
		return true, nil
	case resp.StatusCode == http.StatusAccepted:
		_, _, err = c.do(http.MethodDelete, resp.Header.Get("Location"), nil, nil) //nolint:bodyclose // do and call read and close the body
		return false, err
	}
	return false, fmt.Errorf("mount %s into %s: %d %s", d, dst, resp.StatusCode, b)
}

// putImage pushes an image manifest of config and layers (already uploaded) under ref.
func (c *ociClient) putImage(repo, ref string, config []byte, layers ...[]byte) (digest.Digest, error) {
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	ls := []desc{}
	for _, l := range layers {
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar", digest.FromBytes(l).String(), len(l)})
	}
	body, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{"application/vnd.oci.image.config.v1+json", digest.FromBytes(config).String(), len(config)}, "layers": ls})
	if err != nil {
		return "", err
	}
	resp, b, err := c.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, body, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}) //nolint:bodyclose // do and call read and close the body
	switch {
	case err != nil:
		return "", err
	case resp.StatusCode == http.StatusNotFound && bytes.Contains(b, []byte("MANIFEST_BLOB_UNKNOWN")):
		return "", errBlobUnknown
	case resp.StatusCode != http.StatusCreated:
		return "", fmt.Errorf("put manifest %s:%s: %d %s", repo, ref, resp.StatusCode, b)
	}
	return digest.FromBytes(body), nil
}

// has reports whether repo serves the blob (HEAD).
func (c *ociClient) has(repo string, d digest.Digest) (bool, error) {
	resp, _, err := c.do(http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), nil, nil) //nolint:bodyclose // do and call read and close the body
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK, nil
}

// read GETs a blob or manifest and checks that its content hashes to d.
func (c *ociClient) read(t *testing.T, repo, kind string, d digest.Digest) []byte {
	t.Helper()
	resp, b, err := c.do(http.MethodGet, "/v2/"+repo+"/"+kind+"/"+d.String(), nil, map[string]string{ //nolint:bodyclose // do and call read and close the body
		"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
	if err != nil || resp.StatusCode != http.StatusOK || digest.FromBytes(b) != d {
		t.Errorf("GET %s/%s/%s: err %v, status %v", repo, kind, d, err, respStatus(resp))
	}
	return b
}

func respStatus(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}
