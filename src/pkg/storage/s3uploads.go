package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/opencontainers/go-digest"
)

// An upload session on S3 lives entirely in the bucket, so that each of its requests may reach another
// node. Its state object records the bytes received, the sha256 state over them (a marshalled hash, so
// that the digest is known at commit without reading the content again), the multipart upload holding
// its full parts and the part ETags. Bytes past the last full part wait in a tail object (less than one
// part) until the next append completes a part or the commit sends them as the last part. An append
// writes its parts and its new tail first and the state last: a failed append leaves the state, and so
// the session, at its previous size (parts it uploaded are overwritten by the next append, and a tail
// object it wrote is never referenced and goes with the session).
//
// Appends to one session are serialised on one node; across nodes the protocol's own order (a client
// sends a PATCH after the previous one was answered) and the offset check keep them apart.

// uploadState is a session's state object.
type uploadState struct {
	Size     int64        `json:"size"`
	Hash     []byte       `json:"sha256"` // marshalled sha256 over the Size bytes
	UploadID string       `json:"uploadId,omitempty"`
	Parts    []uploadPart `json:"parts,omitempty"` // part i+1
	Tail     int64        `json:"tail,omitempty"`  // bytes in the tail object
}

type uploadPart struct {
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// maxStateSize caps a state object read back (10,000 parts are well under it).
const maxStateSize = 4 << 20

func (s *S3) sessionPrefix(id string) string { return s.key("uploads/" + id + "/") }
func (s *S3) stateKey(id string) string      { return s.sessionPrefix(id) + "state" }
func (s *S3) dataKey(id string) string       { return s.sessionPrefix(id) + "data" }
func (s *S3) tailKey(id string, st *uploadState) string {
	return s.sessionPrefix(id) + "tail-" + strconv.FormatInt(st.Size, 10)
}

func (st *uploadState) hash() (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return nil, fmt.Errorf("hash state: %w", err)
	}
	return h, nil
}

func (s *S3) loadState(ctx context.Context, op, id string) (*uploadState, error) {
	if !validUploadID(id) {
		return nil, uploadNotFound(op, id, nil)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.stateKey(id))})
	if isS3NotFound(err) {
		return nil, uploadNotFound(op, id, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %s upload %s: %w", op, id, err)
	}
	defer func() { _ = out.Body.Close() }()
	var st uploadState
	if err := json.NewDecoder(io.LimitReader(out.Body, maxStateSize)).Decode(&st); err != nil {
		return nil, fmt.Errorf("storage: %s upload %s: state: %w", op, id, err)
	}
	return &st, nil
}

func (s *S3) putBytes(ctx context.Context, key string, b []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	})
	return err
}

func (s *S3) saveState(ctx context.Context, id string, st *uploadState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.putBytes(ctx, s.stateKey(id), b)
}

// StartUpload creates an empty session and returns its ID.
func (s *S3) StartUpload(ctx context.Context) (string, error) {
	id, err := newUploadID()
	if err != nil {
		return "", fmt.Errorf("storage: start upload: %w", err)
	}
	h, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("storage: start upload: %w", err)
	}
	if err := s.saveState(ctx, id, &uploadState{Hash: h}); err != nil {
		return "", fmt.Errorf("storage: start upload: %w", err)
	}
	return id, nil
}

// UploadSize returns the bytes received so far, or an error wrapping ErrNotFound.
func (s *S3) UploadSize(ctx context.Context, id string) (int64, error) {
	st, err := s.loadState(ctx, "size of", id)
	if err != nil {
		return 0, err
	}
	return st.Size, nil
}

// AppendUpload appends r to the session: through one part-sized buffer, each full part uploaded as it
// fills, the rest kept as the new tail. See the top of this file for what a failure leaves.
func (s *S3) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	unlock := s.locks.lock(id)
	defer unlock()
	st, err := s.loadState(ctx, "append to", id)
	if err != nil {
		return 0, err
	}
	if offset >= 0 && offset != st.Size {
		return st.Size, fmt.Errorf("storage: append to upload %s at %d, size is %d: %w", id, offset, st.Size, ErrOffsetMismatch)
	}
	next, err := s.appendParts(ctx, id, st, r)
	if err != nil {
		return st.Size, fmt.Errorf("storage: append to upload %s: %w", id, err)
	}
	if next == nil { // nothing appended
		return st.Size, nil
	}
	if err := s.saveState(ctx, id, next); err != nil {
		return st.Size, fmt.Errorf("storage: append to upload %s: %w", id, err)
	}
	if st.Tail > 0 { // consumed into a part or the new tail; a leftover goes with the session
		_ = s.deleteKey(ctx, s.tailKey(id, st))
	}
	return next.Size, nil
}

// appendParts reads r after the session's tail, uploads every part it completes and the new tail, and
// returns the state to save (nil when r was empty).
func (s *S3) appendParts(ctx context.Context, id string, st *uploadState, r io.Reader) (*uploadState, error) {
	h, err := st.hash()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, s.partSize)
	fill := int(st.Tail)
	if fill > 0 {
		if err := s.readTail(ctx, id, st, buf[:fill]); err != nil {
			return nil, err
		}
	}
	next := *st
	next.Parts = append([]uploadPart(nil), st.Parts...)
	var n int64
	for {
		m, rerr := io.ReadFull(ctxReader{ctx: ctx, r: r}, buf[fill:])
		h.Write(buf[fill : fill+m])
		fill += m
		n += int64(m)
		if fill == len(buf) {
			if err := s.uploadSessionPart(ctx, id, &next, buf); err != nil {
				return nil, err
			}
			fill = 0
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if n == 0 {
		return nil, nil
	}
	next.Size = st.Size + n
	next.Tail = int64(fill)
	if next.Hash, err = h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
		return nil, err
	}
	if fill > 0 {
		if err := s.putBytes(ctx, s.tailKey(id, &next), buf[:fill]); err != nil {
			return nil, fmt.Errorf("tail: %w", err)
		}
	}
	return &next, nil
}

func (s *S3) readTail(ctx context.Context, id string, st *uploadState, p []byte) error {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.tailKey(id, st))})
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	defer func() { _ = out.Body.Close() }()
	if _, err := io.ReadFull(out.Body, p); err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	return nil
}

// uploadSessionPart uploads p as the next part of the session's multipart upload, creating it first
// when needed, and records the part in st.
func (s *S3) uploadSessionPart(ctx context.Context, id string, st *uploadState, p []byte) error {
	if st.UploadID == "" {
		mpu, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(s.dataKey(id))})
		if err != nil {
			return fmt.Errorf("create multipart upload: %w", err)
		}
		st.UploadID = aws.ToString(mpu.UploadId)
	}
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.dataKey(id)), UploadId: aws.String(st.UploadID),
		PartNumber: aws.Int32(int32(len(st.Parts) + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p))),
	})
	if err != nil {
		return fmt.Errorf("upload part: %w", err)
	}
	st.Parts = append(st.Parts, uploadPart{ETag: aws.ToString(out.ETag), Size: int64(len(p))})
	return nil
}

// CommitUpload verifies the session's content against d and stores it as d's blob: a sha256 digest is
// checked against the session's hash state before anything is written; the multipart upload (with the
// tail as its last part) is then completed under the session's own key, a sha512 digest checked by
// reading it back, and the object copied to d's key on the server. The session is removed on success
// and on ErrDigestMismatch; it is kept on ErrInvalidDigest, a cancelled ctx and I/O errors.
func (s *S3) CommitUpload(ctx context.Context, id string, d digest.Digest) (int64, error) {
	unlock, err := s.locks.lockCommit(ctx, id, d)
	if err != nil {
		return 0, err
	}
	defer unlock()
	st, err := s.loadState(ctx, "commit", id)
	if err != nil {
		return 0, err
	}
	if d.Algorithm() == digest.SHA256 {
		h, err := st.hash()
		if err != nil {
			return 0, fmt.Errorf("storage: commit upload %s: %w", id, err)
		}
		if got := digest.NewDigest(digest.SHA256, h); got != d {
			return 0, s.mismatch(ctx, id, d, got)
		}
	}
	if stored, err := s.Stat(ctx, d); err == nil {
		return stored, s.removeSession(ctx, id)
	}
	if err := s.commitSession(ctx, id, st, d); err != nil {
		return 0, err
	}
	if err := s.removeSession(ctx, id); err != nil {
		return 0, err
	}
	return st.Size, nil
}

func (s *S3) mismatch(ctx context.Context, id string, d, got digest.Digest) error {
	err := fmt.Errorf("storage: commit upload %s: content is %s: %w", id, got, ErrDigestMismatch)
	return errors.Join(err, s.removeSession(ctx, id))
}

// commitSession assembles the session's content under one key, verifies a sha512 d, and copies it to
// d's key.
func (s *S3) commitSession(ctx context.Context, id string, st *uploadState, d digest.Digest) error {
	src := s.tailKey(id, st)
	switch {
	case st.Size == 0:
		if err := s.putBytes(ctx, s.blobKey(d), nil); err != nil {
			return fmt.Errorf("storage: commit upload %s: %w", id, err)
		}
		return nil
	case st.UploadID != "":
		if err := s.completeSession(ctx, id, st); err != nil {
			return fmt.Errorf("storage: commit upload %s: %w", id, err)
		}
		src = s.dataKey(id)
	}
	if d.Algorithm() != digest.SHA256 {
		got, err := s.digestOf(ctx, src, d.Algorithm())
		if err != nil {
			return fmt.Errorf("storage: commit upload %s: %w", id, err)
		}
		if got != d {
			return s.mismatch(ctx, id, d, got)
		}
	}
	if err := s.copyObject(ctx, src, s.blobKey(d), st.Size); err != nil {
		return fmt.Errorf("storage: commit upload %s: %w", id, err)
	}
	return nil
}

// completeSession sends the tail as the last part and completes the session's multipart upload.
func (s *S3) completeSession(ctx context.Context, id string, st *uploadState) error {
	if st.Tail > 0 {
		buf := make([]byte, st.Tail)
		if err := s.readTail(ctx, id, st, buf); err != nil {
			return err
		}
		if err := s.uploadSessionPart(ctx, id, st, buf); err != nil {
			return err
		}
	}
	parts := make([]types.CompletedPart, len(st.Parts))
	for i, p := range st.Parts {
		parts[i] = types.CompletedPart{ETag: aws.String(p.ETag), PartNumber: aws.Int32(int32(i + 1))}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.dataKey(id)), UploadId: aws.String(st.UploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// digestOf streams the object at key through a hash of alg.
func (s *S3) digestOf(ctx context.Context, key string, alg digest.Algorithm) (digest.Digest, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return "", fmt.Errorf("rehash: %w", err)
	}
	defer func() { _ = out.Body.Close() }()
	h := newHash(alg)
	if _, err := io.Copy(h, ctxReader{ctx: ctx, r: out.Body}); err != nil {
		return "", fmt.Errorf("rehash: %w", err)
	}
	return digest.NewDigest(alg, h), nil
}

// CancelUpload removes the session, or returns an error wrapping ErrNotFound.
func (s *S3) CancelUpload(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := s.locks.lock(id)
	defer unlock()
	if _, err := s.loadState(ctx, "cancel", id); err != nil {
		return err
	}
	return s.removeSession(ctx, id)
}

// removeSession aborts the session's multipart uploads and deletes its objects, the state last (a
// removal cut short is finished by PurgeUploads). It goes on when ctx is done.
func (s *S3) removeSession(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	prefix := s.sessionPrefix(id)
	var errs []error
	errs = append(errs, s.abortUploads(ctx, prefix, func(types.MultipartUpload) bool { return true }))
	err := s.listObjects(ctx, prefix, func(o types.Object) error {
		if key := aws.ToString(o.Key); key != s.stateKey(id) {
			return s.deleteKey(ctx, key)
		}
		return nil
	})
	errs = append(errs, err, s.deleteKey(ctx, s.stateKey(id)))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: remove upload %s: %w", id, err)
	}
	return nil
}

// abortUploads aborts the multipart uploads under prefix for which match is true.
func (s *S3) abortUploads(ctx context.Context, prefix string, match func(types.MultipartUpload) bool) error {
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)})
	var errs []error
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list multipart uploads: %w", err)
		}
		for _, u := range page.Uploads {
			if match(u) {
				errs = append(errs, s.abort(ctx, aws.ToString(u.Key), u.UploadId))
			}
		}
	}
	return errors.Join(errs...)
}

// listObjects calls fn for every object under prefix.
func (s *S3) listObjects(ctx context.Context, prefix string, fn func(types.Object) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list objects: %w", err)
		}
		for _, o := range page.Contents {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// PurgeUploads removes sessions whose state was last written before cutoff (and leftovers of sessions
// without a state, by their newest object), then aborts every other multipart upload under the prefix
// started before cutoff: those of commits cut short by a crash. It returns how many sessions it removed.
func (s *S3) PurgeUploads(ctx context.Context, cutoff time.Time) (int, error) {
	type session struct {
		state  bool
		newest time.Time
	}
	sessions := map[string]*session{}
	uploads := s.key("uploads/")
	err := s.listObjects(ctx, uploads, func(o types.Object) error {
		id, name, ok := strings.Cut(strings.TrimPrefix(aws.ToString(o.Key), uploads), "/")
		if !ok || !validUploadID(id) {
			return nil
		}
		x := sessions[id]
		if x == nil {
			x = &session{}
			sessions[id] = x
		}
		t := aws.ToTime(o.LastModified)
		if name == "state" {
			x.state, x.newest = true, t
		} else if !x.state && t.After(x.newest) {
			x.newest = t
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: purge uploads: %w", err)
	}
	removed := 0
	var errs []error
	for id, x := range sessions {
		if !x.newest.Before(cutoff) {
			continue
		}
		unlock := s.locks.lock(id)
		err := s.removeSession(ctx, id)
		unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		delete(sessions, id)
		removed++
	}
	errs = append(errs, s.abortUploads(ctx, s.prefix, func(u types.MultipartUpload) bool {
		id, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(u.Key), uploads), "/")
		return sessions[id] == nil && aws.ToTime(u.Initiated).Before(cutoff)
	}))
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("storage: purge uploads: %w", err)
	}
	return removed, nil
}
