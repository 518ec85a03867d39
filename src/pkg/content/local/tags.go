package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// ListTags returns repo's tags after last in lexical order, at most n (n <= 0: all). A repository that
// does not exist answers NAME_UNKNOWN.
func (s *Service) ListTags(ctx context.Context, repo content.Repo, last string, n int) ([]string, error) {
	tags, err := s.artifacts.ListTags(ctx, repo.Name, meta.Page{Last: last, N: n})
	if errors.Is(err, meta.ErrNotFound) {
		return nil, errcode.ErrNameUnknown.WithMessage("repository %s not known to registry", repo.Name).
			WithDetail(map[string]string{"name": repo.Name})
	}
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repo.Name, err)
	}
	if tags == nil {
		tags = []string{}
	}
	return tags, nil
}

// ListRepositories returns repository names after last in lexical order, at most n (n <= 0: all).
func (s *Service) ListRepositories(ctx context.Context, last string, n int) ([]string, error) {
	repos, err := s.artifacts.ListRepositories(ctx, meta.Page{Last: last, N: n})
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	if repos == nil {
		repos = []string{}
	}
	return repos, nil
}
