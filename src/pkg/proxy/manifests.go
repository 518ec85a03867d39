package proxy

import (
	"context"
	"encoding/json"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
)

// GetManifest serves a manifest of a proxy-cache project: by digest from local storage when held, else
// from the upstream; by tag after one upstream HEAD that names the current digest. When the upstream
// fails (anything but a 404) and a local copy exists, the local copy is served with Stale set.
func (s *Service) GetManifest(ctx context.Context, repo content.Repo, ref string) (*content.Manifest, error) {
	if !repo.Project.IsProxy() {
		return s.Local.GetManifest(ctx, repo, ref)
	}
	m, err := s.getProxied(ctx, repo, ref)
	if err == nil {
		s.pulled(ctx, repo, m)
	}
	return m, err
}

func (s *Service) getProxied(ctx context.Context, repo content.Repo, ref string) (*content.Manifest, error) {
	up, err := s.upstreams.Upstream(ctx, repo.Project)
	if err != nil {
		return nil, err
	}
	if d, err := digest.Parse(ref); err == nil {
		if m, err := s.Local.GetManifest(ctx, repo, ref); err == nil {
			return m, nil
		} else if !errcode.IsCode(err, errcode.ErrManifestUnknown) {
			return nil, err
		}
		return s.fetchManifest(ctx, up, repo, d, "")
	}

	desc, headErr := up.ManifestExists(ctx, repo.Path, ref)
	if headErr != nil {
		if servesLocal(headErr) {
			if m := s.staleTag(ctx, repo, ref, headErr); m != nil {
				return m, nil
			}
		}
		return nil, upstreamError(headErr, errcode.ErrManifestUnknown)
	}
	if m, err := s.Local.GetManifest(ctx, repo, desc.Digest.String()); err == nil {
		// Held already: make sure the local tag follows the upstream one.
		if cur, err := s.Local.GetManifest(ctx, repo, ref); err != nil || cur.Digest != m.Digest {
			if err := s.Local.RecordManifest(ctx, repo, ref, m); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	m, err := s.fetchManifest(ctx, up, repo, desc.Digest, ref)
	if err != nil && ctx.Err() == nil && !errcode.IsCode(err, errcode.ErrManifestUnknown) {
		// The tag moved upstream but the new manifest could not be fetched (rate limit, outage between
		// HEAD and GET, invalid answer): the local copy is still better than an error.
		if local := s.staleTag(ctx, repo, ref, err); local != nil {
			return local, nil
		}
	}
	return m, err
}

// staleTag returns the local manifest of tag marked Stale, or nil when there is none; upErr is the
// upstream failure that made it necessary (logged).
func (s *Service) staleTag(ctx context.Context, repo content.Repo, tag string, upErr error) *content.Manifest {
	m, err := s.Local.GetManifest(ctx, repo, tag)
	if err != nil {
		return nil
	}
	s.log.WarnContext(ctx, "upstream failed; serving the local copy", "repository", repo.Name, "tag", tag, "err", upErr)
	m.Stale = true
	return m
}

// fetchManifest downloads the manifest d once however many clients ask, records it (and the tag) and
// returns it.
func (s *Service) fetchManifest(ctx context.Context, up Upstream, repo content.Repo, d digest.Digest, tag string) (*content.Manifest, error) {
	key := repo.Name + "@" + d.String() + ":" + tag
	m, _, err := s.manifests.Do(ctx, key, func(ctx context.Context) (*content.Manifest, error) {
		um, err := up.GetManifest(ctx, repo.Path, d.String())
		if err != nil {
			return nil, upstreamError(err, errcode.ErrManifestUnknown)
		}
		if um.Digest != d {
			return nil, errcode.ErrUpstreamInvalid.WithMessage("upstream manifest digest %s does not match %s", um.Digest, d)
		}
		m := &content.Manifest{Digest: um.Digest, MediaType: um.MediaType, Body: um.Body}
		if err := s.Local.RecordManifest(ctx, repo, tag, m); err != nil {
			return nil, err
		}
		return m, nil
	})
	return m, err
}

// PutManifest accepts, in a proxy-cache project, only manifests that carry a subject: that is how an
// organisation signs or attests proxied content locally. Every other push is DENIED.
func (s *Service) PutManifest(ctx context.Context, repo content.Repo, ref, mediaType string, body []byte) (*content.PutResult, error) {
	if repo.Project.IsProxy() && !hasSubject(body) {
		return nil, errcode.ErrDenied.WithMessage("project %s is a proxy cache: only manifests with a subject (signatures, attestations) may be pushed", repo.Project.Name)
	}
	return s.Local.PutManifest(ctx, repo, ref, mediaType, body)
}

func hasSubject(body []byte) bool {
	var m struct {
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
	}
	return json.Unmarshal(body, &m) == nil && m.Subject != nil && m.Subject.Digest != ""
}

// ListTags lists the upstream's tags, or the local ones when the upstream fails.
func (s *Service) ListTags(ctx context.Context, repo content.Repo, last string, n int) ([]string, error) {
	if !repo.Project.IsProxy() {
		return s.Local.ListTags(ctx, repo, last, n)
	}
	up, err := s.upstreams.Upstream(ctx, repo.Project)
	if err != nil {
		return nil, err
	}
	tags, upErr := up.ListTags(ctx, repo.Path)
	if upErr != nil {
		if servesLocal(upErr) {
			if local, err := s.Local.ListTags(ctx, repo, last, n); err == nil {
				return local, nil
			}
		}
		return nil, upstreamError(upErr, errcode.ErrNameUnknown)
	}
	return paginate(tags, last, n), nil
}
