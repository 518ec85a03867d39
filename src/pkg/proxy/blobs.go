package proxy

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
)

const fillBufferSize = 256 << 10

// StatBlob reports a blob's size: locally when held, else by starting (or joining) its fill and waiting
// for the upstream's answer, so a HEAD before a GET costs no second upstream request.
func (s *Service) StatBlob(ctx context.Context, repo content.Repo, d digest.Digest) (int64, error) {
	size, err := s.Local.StatBlob(ctx, repo, d)
	if err == nil || !repo.Project.IsProxy() || !errcode.IsCode(err, errcode.ErrBlobUnknown) {
		return size, err
	}
	f, err := s.startFill(ctx, repo, d)
	if err != nil {
		return 0, err
	}
	if err := waitFor(ctx, f.sizeKnown); err != nil {
		return 0, err
	}
	f.mu.Lock()
	size, ferr := f.size, f.err
	f.mu.Unlock()
	if ferr != nil {
		return 0, ferr
	}
	if size < 0 { // the upstream sent no length: the fill has to finish first
		if err := waitFor(ctx, f.done); err != nil {
			return 0, err
		}
		return s.Local.StatBlob(ctx, repo, d)
	}
	return size, nil
}

// OpenBlob serves a blob locally when held, else streams it from the shared upstream fill. When the
// upstream announced no length, the fill is awaited and the committed blob served, so that Size is
// always the real size (the handler sends it as Content-Length).
func (s *Service) OpenBlob(ctx context.Context, repo content.Repo, d digest.Digest) (content.BlobContent, error) {
	b, err := s.Local.OpenBlob(ctx, repo, d)
	if err == nil || !repo.Project.IsProxy() || !errcode.IsCode(err, errcode.ErrBlobUnknown) {
		return b, err
	}
	f, err := s.startFill(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, f.sizeKnown); err != nil {
		return nil, err
	}
	f.mu.Lock()
	size := f.size
	f.mu.Unlock()
	if size >= 0 {
		if file, past := f.openTemp(); !past {
			return &fillReader{ctx: ctx, f: f, file: file}, nil
		}
	}
	if err := waitFor(ctx, f.done); err != nil {
		return nil, err
	}
	f.mu.Lock()
	ferr := f.err
	f.mu.Unlock()
	if ferr != nil {
		return nil, ferr
	}
	return s.Local.OpenBlob(ctx, repo, d)
}

// startFill joins the download of d into repo, starting it when none runs. The download runs detached
// from ctx with its own timeout: a client hanging up does not abort it for the others.
func (s *Service) startFill(ctx context.Context, repo content.Repo, d digest.Digest) (*fill, error) {
	up, err := s.upstreams.Upstream(ctx, repo.Project)
	if err != nil {
		return nil, err
	}
	key := repo.Name + "@" + d.String()
	f, leader := s.fills.join(key)
	if leader {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FillTimeout)
		go func() {
			defer cancel()
			defer s.fills.remove(key, f)
			err := s.runFill(fctx, up, repo, d, f)
			switch {
			case errcode.IsCode(err, errcode.ErrBlobUnknown):
				s.log.DebugContext(fctx, "blob unknown upstream", "repository", repo.Name, "digest", d)
			case err != nil:
				s.log.WarnContext(fctx, "upstream blob download failed", "repository", repo.Name, "digest", d, "err", err)
			}
			f.finish(err)
		}()
	}
	return f, nil
}

func (s *Service) runFill(ctx context.Context, up Upstream, repo content.Repo, d digest.Digest, f *fill) (err error) {
	// A caller may have missed the blob locally just before an earlier fill committed it and left the
	// group: then it is held now and must not be downloaded again. The fill ends without a temp file,
	// which sends its readers to the local copy.
	if _, err := s.Local.StatBlob(ctx, repo, d); err == nil {
		return nil
	}
	rc, size, err := up.GetBlob(ctx, repo.Path, d, 0)
	if err != nil {
		return upstreamError(err, errcode.ErrBlobUnknown)
	}
	defer func() { _ = rc.Close() }()
	w, err := s.blobs.NewWriter(ctx)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = w.Cancel()
		}
	}()
	f.started(w.Path(), size)

	buf := make([]byte, fillBufferSize)
	var total int64
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if size >= 0 && total+int64(n) > size {
				return errcode.ErrUpstreamInvalid.WithMessage("upstream sent more than the %d bytes it announced for %s", size, d)
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("write blob: %w", werr)
			}
			total += int64(n)
			f.advance(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return errcode.ErrUpstreamUnavailable.Wrap(rerr, "upstream blob download interrupted")
		}
	}
	if size >= 0 && total != size {
		return errcode.ErrUpstreamInvalid.WithMessage("upstream sent %d of the %d bytes it announced for %s", total, size, d)
	}
	f.beginCommit()
	if err := w.Commit(ctx, d); err != nil {
		committed = true // Commit removes the temp file itself on failure
		return errcode.ErrUpstreamInvalid.Wrap(err, "upstream blob does not match its digest %s", d)
	}
	committed = true
	if err := s.links.LinkBlob(ctx, repo.Project.ID, repo.Name, d.String(), total); err != nil {
		return fmt.Errorf("link blob: %w", err)
	}
	return nil
}

func waitFor(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// paginate applies the tags-list n/last rules to a full list.
func paginate(tags []string, last string, n int) []string {
	sorted := append([]string(nil), tags...)
	sort.Strings(sorted)
	i := 0
	if last != "" {
		i = sort.SearchStrings(sorted, last)
		if i < len(sorted) && sorted[i] == last {
			i++
		}
	}
	out := sorted[i:]
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
