package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// StatBlob reports a blob's size: locally when held; else from the download of it in progress, when
// one runs; else by asking the upstream with a HEAD, once at a time per blob however many clients ask.
// A HEAD downloads and stores nothing
// (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#checking-if-content-exists-in-the-registry).
// Only an upstream that announces no size in its HEAD answer makes the blob be downloaded: the size
// answered must be the real one.
func (s *Service) StatBlob(ctx context.Context, repo content.Repo, d digest.Digest) (int64, error) {
	size, err := s.Local.StatBlob(ctx, repo, d)
	if err == nil || !repo.Project.IsProxy() || !errcode.IsCode(err, errcode.ErrBlobUnknown) {
		return size, err
	}
	k := keyOf(refBlob, repo, d.String())
	if s.memo.isNotFound(k) {
		return 0, errUnknownUpstream(errcode.ErrBlobUnknown)
	}
	if f := s.fills.running(fillKey(repo, d)); f != nil {
		return s.fillSize(ctx, repo, d, f)
	}
	if size, ok := s.memo.blobSize(k); ok {
		return size, nil
	}
	up, err := s.upstreams.Upstream(ctx, repo.Project)
	if err != nil {
		return 0, err
	}
	size, _, err = s.blobStats.Do(ctx, k.flight(), func(ctx context.Context) (int64, error) {
		// A HEAD that ended just before this one started answers it.
		if s.memo.isNotFound(k) {
			return 0, errUnknownUpstream(errcode.ErrBlobUnknown)
		}
		if size, ok := s.memo.blobSize(k); ok {
			return size, nil
		}
		size, err := up.StatBlob(ctx, repo.Path, d)
		switch {
		case upstream.IsNotFound(err):
			s.memo.setNotFound(k)
		case err == nil && size >= 0:
			s.memo.setBlobSize(k, size)
		}
		return size, upstreamError(err, errcode.ErrBlobUnknown)
	})
	if err != nil || size >= 0 {
		return size, err
	}
	f, err := s.startFill(ctx, repo, d, nil)
	if err != nil {
		return 0, err
	}
	return s.fillSize(ctx, repo, d, f)
}

// fillSize returns the size of the blob f downloads, once the upstream announced it (or, when it does
// not, once the download is stored).
func (s *Service) fillSize(ctx context.Context, repo content.Repo, d digest.Digest, f *fill) (int64, error) {
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
	// A fill this reader joined too late to follow may end without keeping the blob (over the quota):
	// the reader then starts (or joins) another fill.
	for attempt := 1; ; attempt++ {
		b, f, err := s.openFilled(ctx, repo, d)
		if err == nil || attempt == maxRoomAttempts || f == nil || !f.wasNotStored() || !errcode.IsCode(err, errcode.ErrBlobUnknown) {
			return b, err
		}
	}
}

// openFilled serves d from a fill: from its temp file while it grows, else from the local copy once it
// is stored. It returns the fill it used, if any.
func (s *Service) openFilled(ctx context.Context, repo content.Repo, d digest.Digest) (content.BlobContent, *fill, error) {
	slot := &readerSlot{}
	f, err := s.startFill(ctx, repo, d, slot)
	if err != nil {
		return nil, nil, err
	}
	defer f.release(slot) // a no-op once openTemp took the handle
	if err := waitFor(ctx, f.sizeKnown); err != nil {
		return nil, f, err
	}
	f.mu.Lock()
	size := f.size
	f.mu.Unlock()
	if size >= 0 {
		if file, past := f.openTemp(slot); !past {
			return &fillReader{ctx: ctx, f: f, file: file}, f, nil
		}
	}
	if err := waitFor(ctx, f.done); err != nil {
		return nil, f, err
	}
	f.mu.Lock()
	ferr := f.err
	f.mu.Unlock()
	if ferr != nil {
		return nil, f, ferr
	}
	b, err := s.Local.OpenBlob(ctx, repo, d)
	return b, f, err
}

// FetchBlob makes sure d is held locally in repo: it returns nil at once when it is, else once the
// shared upstream download (started here or joined) has stored it, or that download's error. For
// background work such as the referrers prefetch, which needs the blob stored rather than streamed.
func (s *Service) FetchBlob(ctx context.Context, repo content.Repo, d digest.Digest) error {
	_, err := s.Local.StatBlob(ctx, repo, d)
	if err == nil || !repo.Project.IsProxy() || !errcode.IsCode(err, errcode.ErrBlobUnknown) {
		return err
	}
	f, err := s.startFill(ctx, repo, d, nil)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, f.done); err != nil {
		return err
	}
	f.mu.Lock()
	ferr := f.err
	f.mu.Unlock()
	if ferr != nil {
		return ferr
	}
	_, err = s.Local.StatBlob(ctx, repo, d)
	return err
}

// startFill joins the download of d into repo, starting it when none runs. The download runs detached
// from ctx with its own timeout: a client hanging up does not abort it for the others. A reader passes
// a slot, reserved before the download can start (fill.reserve), and releases it when done; others nil.
func (s *Service) startFill(ctx context.Context, repo content.Repo, d digest.Digest, slot *readerSlot) (*fill, error) {
	k := keyOf(refBlob, repo, d.String())
	if s.memo.isNotFound(k) {
		return nil, errUnknownUpstream(errcode.ErrBlobUnknown)
	}
	up, err := s.upstreams.Upstream(ctx, repo.Project)
	if err != nil {
		return nil, err
	}
	key := fillKey(repo, d)
	f, leader := s.fills.join(key)
	if slot != nil {
		f.reserve(slot)
	}
	if leader {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FillTimeout)
		go func() {
			defer cancel()
			defer s.fills.remove(key, f)
			var err error
			if s.memo.isNotFound(k) { // a fill that ended just before this one started answers it
				err = errUnknownUpstream(errcode.ErrBlobUnknown)
			} else {
				err = s.runFill(fctx, up, repo, d, f)
			}
			switch {
			case errcode.IsCode(err, errcode.ErrBlobUnknown):
				s.memo.setNotFound(k)
				s.log.DebugContext(fctx, "blob unknown upstream", "repository", repo.Name, "digest", d)
			case err != nil && f.isVerified():
				// Its readers got the verified bytes; the blob is just not held, and the next pull downloads it again.
				s.log.WarnContext(fctx, "verified upstream blob could not be stored", "repository", repo.Name, "digest", d, "err", err)
			case err != nil:
				s.log.WarnContext(fctx, "upstream blob download failed", "repository", repo.Name, "digest", d, "err", err)
			}
			f.finish(err)
		}()
	}
	return f, nil
}

// fillKey names the download of d into repo.
func fillKey(repo content.Repo, d digest.Digest) string { return repo.Name + "@" + d.String() }

// runFill downloads d into a temporary file that f's readers follow, verifies it, releases the readers
// (they may then have the last byte), and only then makes it durable and links it: the client does not
// wait for the fsync. With Options.Leases it first takes the blob's fill lease, or waits for the node
// holding it to store the blob (fillshare.go). f's done, which a request arriving meanwhile waits for, is closed by the caller
// once runFill returned, so such a request finds the blob stored.
func (s *Service) runFill(ctx context.Context, up Upstream, repo content.Repo, d digest.Digest, f *fill) (err error) {
	// A caller may have missed the blob locally just before an earlier fill committed it and left the
	// group: then it is held now and must not be downloaded again. The fill ends without a temp file,
	// which sends its readers to the local copy.
	if _, err := s.Local.StatBlob(ctx, repo, d); err == nil {
		return nil
	}
	l, stored, err := s.fillLease(ctx, repo, d)
	if err != nil || stored {
		return err
	}
	if l != nil {
		defer s.releaseFillLease(ctx, l)
		var cancel context.CancelFunc
		ctx, cancel = leaseContext(ctx, l)
		defer cancel()
	}
	rc, size, err := up.GetBlob(ctx, repo.Path, d, 0)
	if err != nil {
		return upstreamError(err, errcode.ErrBlobUnknown)
	}
	defer func() { _ = rc.Close() }()
	// Over the project's quota (and no room could be made): stream it to the readers, keep nothing.
	keep := s.roomFor(ctx, repo, d.String(), size)
	w, err := s.blobs.NewWriter(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Cancel() }() // a no-op once committed or failed verification
	f.started(w.Path(), size)

	total, err := w.WriteFrom(ctx, &upstreamBody{r: rc, size: size, left: size, d: d}, f.advance)
	if err != nil {
		if errcode.As(err) != nil {
			return err
		}
		return fmt.Errorf("write blob: %w", err)
	}
	if size >= 0 && total != size {
		return errcode.ErrUpstreamInvalid.WithMessage("upstream sent %d of the %d bytes it announced for %s", total, size, d)
	}
	f.beginCommit()
	if err := w.Verify(ctx, d); err != nil {
		if errors.Is(err, storage.ErrDigestMismatch) {
			return errcode.ErrUpstreamInvalid.Wrap(err, "upstream blob does not match its digest %s", d)
		}
		return fmt.Errorf("verify blob: %w", err)
	}
	f.verify()
	if !keep {
		f.skipStore()
		s.passthrough(ctx, repo, d.String(), total, false)
		return nil // the deferred Cancel removes the temp file; open readers keep reading it
	}
	unpin, err := content.Pin(ctx, s.opts.Pins, d)
	if err != nil {
		return fmt.Errorf("pin blob: %w", err)
	}
	defer unpin() // after the link below
	if err := checkFillLease(ctx, l); err != nil {
		return err
	}
	if err := w.Commit(ctx, d); err != nil {
		return fmt.Errorf("store verified blob: %w", err)
	}
	linked, err := s.linkFilled(ctx, repo, d, total)
	if err == nil && !linked {
		f.skipStore()
		s.passthrough(ctx, repo, d.String(), total, true)
	}
	return err
}

// upstreamBody reads an upstream blob body, failing with UPSTREAM_INVALID once it goes past the
// announced size (size < 0: none announced) and with UPSTREAM_UNAVAILABLE when the download breaks.
type upstreamBody struct {
	r    io.Reader
	size int64 // announced, -1 when unknown
	left int64
	d    digest.Digest
}

func (u *upstreamBody) Read(p []byte) (int, error) {
	if u.size >= 0 && int64(len(p)) > u.left+1 {
		p = p[:u.left+1] // one more than allowed tells "too long" from "exact"
	}
	n, err := u.r.Read(p)
	if u.size >= 0 {
		if int64(n) > u.left {
			return 0, errcode.ErrUpstreamInvalid.WithMessage("upstream sent more than the %d bytes it announced for %s", u.size, u.d)
		}
		u.left -= int64(n)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, errcode.ErrUpstreamUnavailable.Wrap(err, "upstream blob download interrupted")
	}
	return n, err
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
