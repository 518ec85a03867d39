package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// TokenResult is issue 12's figures: what a bearer token costs on warm reads, and how fast the token
// service issues tokens.
type TokenResult struct {
	Manifest  Comparison // warm manifest GET by digest of a public project: with a bearer token vs anonymous
	Referrers Comparison // warm referrers GET of the same subject: with a bearer token vs anonymous
	Issue     LoadResult // GET /service/token with the admin's Basic credentials, one pull scope
}

// RunToken pushes an image and a referrer into a public project of a fresh Berth, gets a pull token
// for the repository, and compares warm GETs that carry the token with anonymous ones on the same
// server (the token's signature is checked on every request), then measures token issuance.
func (r *Runner) RunToken(ctx context.Context) (res TokenResult, err error) {
	cfg := r.Cfg
	b, err := r.startBerth(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(b, &err)
	const repo = "bench/app"
	if err := b.CreateProject(ctx, "bench", 0, false); err != nil { // public
		return res, err
	}
	layer, err := b.PushBytes(ctx, repo, []byte("token bench layer"))
	if err != nil {
		return res, err
	}
	mdesc, mbody, err := b.PushImage(ctx, repo, "v1", layer)
	if err != nil {
		return res, err
	}
	if _, err := b.PushReferrer(ctx, repo, mdesc, "application/vnd.bench.sig", 1); err != nil {
		return res, err
	}
	tokenURL := b.URL + "/service/token?" + url.Values{"service": {"berth"}, "scope": {"repository:" + repo + ":pull"}}.Encode()
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(b.User+":"+b.Pass))}}
	st, _, body, err := b.Get(ctx, tokenURL, basic)
	if err != nil || st != http.StatusOK {
		return res, fmt.Errorf("token: status %d: %w", st, err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
		return res, fmt.Errorf("token: %s: %w", body, err)
	}
	// Each comparison differs in the Authorization header only: the manifest loads both send the
	// manifest Accept list, the referrers loads neither.
	auth := http.Header{"Authorization": {"Bearer " + tok.Token}}
	bearer := manifestAccept.Clone()
	bearer.Set("Authorization", auth.Get("Authorization"))
	mpath := b.URL + "/v2/" + repo + "/manifests/" + mdesc.Digest.String()
	rpath := b.URL + "/v2/" + repo + "/referrers/" + mdesc.Digest.String()
	// The referrers answer's size, and proof that the token is accepted, before measuring.
	st, _, rbody, err := b.Get(ctx, rpath, auth)
	if err != nil || st != http.StatusOK {
		return res, fmt.Errorf("referrers with the token: status %d: %w", st, err)
	}
	load := func(u string, size int, hdr http.Header) Load {
		return Load{URL: u, Conns: cfg.ManifestConns, WantBytes: int64(size), Header: hdr, ServerPid: b.Pid()}
	}
	r.progress("token: manifest GET, bearer vs anonymous, %d connections", cfg.ManifestConns)
	if res.Manifest, err = r.plan().Compare(ctx, "manifest GET with a bearer token vs anonymous",
		load(mpath, len(mbody), bearer), load(mpath, len(mbody), manifestAccept), ">= 0.9"); err != nil {
		return res, err
	}
	r.progress("token: referrers GET, bearer vs anonymous, %d connections", cfg.ManifestConns)
	if res.Referrers, err = r.plan().Compare(ctx, "referrers GET with a bearer token vs anonymous",
		load(rpath, len(rbody), auth), load(rpath, len(rbody), nil), ">= 0.9"); err != nil {
		return res, err
	}
	r.progress("token: issuance, %d connections", cfg.ManifestConns)
	issue := Load{URL: tokenURL, Conns: cfg.ManifestConns, WantBytes: -1, Header: basic, ServerPid: b.Pid(),
		Duration: cfg.Trial, MaxRequests: cfg.MaxRequests}
	if res.Issue, err = RunLoad(ctx, issue); err == nil && res.Issue.Errors > 0 {
		err = fmt.Errorf("token issuance: %d failed requests, first: %w", res.Issue.Errors, res.Issue.FirstErr)
	}
	return res, err
}

func (r *Report) tokenRows() []summaryRow {
	x := r.Token
	if x == nil {
		return nil
	}
	atLeast := func(x Ratios) bool { return x.Med >= 0.9 }
	var rows []summaryRow
	if len(x.Manifest.Berth) > 0 {
		rows = append(rows, reqRows(fmt.Sprintf("Warm manifest GET with a bearer token (vs anonymous), %d connections", x.Manifest.Conns), "",
			x.Manifest, ">= 0.9", atLeast, true, 0)...)
	}
	if len(x.Referrers.Berth) > 0 {
		rows = append(rows, reqRows(fmt.Sprintf("Warm referrers GET with a bearer token (vs anonymous), %d connections", x.Referrers.Conns), "",
			x.Referrers, ">= 0.9", atLeast, true, 0)...)
	}
	if x.Issue.Requests > 0 {
		rows = append(rows, row("Token issuance (GET /service/token, admin Basic, one scope)", rps(x.Issue.RPS()), "-", "-", "-", "-"))
	}
	return rows
}
