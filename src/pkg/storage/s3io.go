package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// uploadParallelism bounds the parts one commit uploads or copies at once.
const uploadParallelism = 4

// install uploads the verified temporary file f (size bytes) to d's key: one PutObject up to PartSize,
// else a multipart upload whose parts are read from the file (no buffering) and which is completed
// only after every part is in, and aborted on any error. Either way the object appears whole or not at
// all. If d is already stored nothing is uploaded. f is closed and removed whatever happens.
func (s *S3) install(ctx context.Context, f *os.File, d digest.Digest, size int64) (int64, error) {
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	if stored, err := s.Stat(ctx, d); err == nil {
		return stored, nil // another writer, maybe on another node, stored it first: identical content
	}
	key := s.blobKey(d)
	if size <= s.partSize {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key),
			Body: io.NewSectionReader(f, 0, size), ContentLength: aws.Int64(size),
		})
		if err != nil {
			return 0, fmt.Errorf("put object: %w", err)
		}
		return size, nil
	}
	if err := s.multipart(ctx, key, size, func(ctx context.Context, in *s3.UploadPartInput, off, n int64) (*string, error) {
		in.Body, in.ContentLength = io.NewSectionReader(f, off, n), aws.Int64(n)
		out, err := s.client.UploadPart(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.ETag, nil
	}, s.partSize); err != nil {
		return 0, err
	}
	return size, nil
}

// partFunc sends one part (the bytes [off, off+n) of the object) with the bucket, key, upload ID and
// part number set in in, and returns its ETag.
type partFunc func(ctx context.Context, in *s3.UploadPartInput, off, n int64) (*string, error)

// multipart writes an object of size bytes at key as a multipart upload of parts of partSize, sent by
// send, uploadParallelism at a time. The upload is completed when every part is in, else aborted.
func (s *S3) multipart(ctx context.Context, key string, size int64, send partFunc, partSize int64) error {
	mpu, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	parts := make([]types.CompletedPart, (size+partSize-1)/partSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadParallelism)
	for i := range parts {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		num := aws.Int32(int32(i + 1))
		g.Go(func() error {
			etag, err := send(gctx, &s3.UploadPartInput{Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: mpu.UploadId, PartNumber: num}, off, n)
			parts[i] = types.CompletedPart{ETag: etag, PartNumber: num}
			return err
		})
	}
	err = g.Wait()
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: mpu.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		return errors.Join(fmt.Errorf("multipart upload: %w", err), s.abort(ctx, key, mpu.UploadId))
	}
	return nil
}

// abort aborts a multipart upload, even when ctx is done (a client that hung up must not leave parts
// behind).
func (s *S3) abort(ctx context.Context, key string, id *string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: id})
	if err != nil && !isS3NotFound(err) {
		return fmt.Errorf("abort multipart upload: %w", err)
	}
	return nil
}

// copyObject copies src (size bytes) to dst on the server: one CopyObject up to 5 GiB, else a
// multipart copy.
func (s *S3) copyObject(ctx context.Context, src, dst string, size int64) error {
	source := aws.String(s.bucket + "/" + src) // keys are made of [0-9a-z/-]: nothing to escape
	if size <= s.copySize {
		_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(dst), CopySource: source})
		if err != nil {
			return fmt.Errorf("copy object: %w", err)
		}
		return nil
	}
	return s.multipart(ctx, dst, size, func(ctx context.Context, in *s3.UploadPartInput, off, n int64) (*string, error) {
		out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: in.Bucket, Key: in.Key, UploadId: in.UploadId, PartNumber: in.PartNumber,
			CopySource: source, CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
		})
		if err != nil {
			return nil, err
		}
		return out.CopyPartResult.ETag, nil
	}, s.copySize)
}

// Redirecter is implemented by blobs that clients may fetch from elsewhere (a presigned URL of the
// object store). RedirectURL returns "" when redirects are off.
type Redirecter interface {
	RedirectURL(ctx context.Context) (string, error)
}

// s3Blob streams an object: one GET per client request. Open sends the GET (without Range) and keeps
// its body, so that a whole-blob read costs that one request; a Seek elsewhere than the current offset
// drops the body, and the next Read sends one GET with "Range: bytes=<offset>-". With redirects on, Open
// sends a HEAD instead (the client is expected to follow the redirect) and the first Read its GET. ctx
// is the Open's: the Blob lives within one request.
type s3Blob struct {
	ctx  context.Context
	s    *S3
	key  string
	size int64
	off  int64
	body io.ReadCloser // the current GET's body, positioned at off; nil before the next GET
}

var (
	_ Blob        = (*s3Blob)(nil)
	_ Redirecter  = (*s3Blob)(nil)
	_ io.WriterTo = (*s3Blob)(nil)
)

// get sends a GET of the object from b.off: the whole object (no Range) from offset 0.
func (b *s3Blob) get() (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(b.s.bucket), Key: aws.String(b.key)}
	if b.off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", b.off))
	}
	return b.s.client.GetObject(withSplice(b.ctx), in)
}

// open sends the GET from b.off unless its body is already there.
func (b *s3Blob) open() error {
	if b.body != nil {
		return nil
	}
	out, err := b.get()
	if err != nil {
		return fmt.Errorf("storage: read %s: %w", b.key, err)
	}
	b.body = out.Body
	return nil
}

func (b *s3Blob) Size() int64 { return b.size }

func (b *s3Blob) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if err := b.open(); err != nil {
		return 0, err
	}
	n, err := b.body.Read(p)
	b.off += int64(n)
	if errors.Is(err, io.EOF) && b.off < b.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// WriteTo copies the rest of the blob to w: through the body's own WriteTo when it has one (a
// spliceBody: socket to socket, see spliceClient), else through one buffer of copyChunk bytes (io.Copy's
// own is 32 KiB), writing what each read of the GET's body returns, on the calling goroutine. (Reading
// the next chunk on another goroutine while writing lowered one download's latency but cost a quarter
// more CPU per byte, which is what limits throughput when many downloads share the cores.)
func (b *s3Blob) WriteTo(w io.Writer) (int64, error) {
	if b.off >= b.size {
		return 0, nil
	}
	if err := b.open(); err != nil {
		return 0, err
	}
	if wt, ok := b.body.(io.WriterTo); ok {
		n, err := wt.WriteTo(w)
		b.off += n
		if err == nil && b.off < b.size {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	buf := make([]byte, copyChunk)
	var total int64
	for {
		n, err := b.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (b *s3Blob) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.off + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("storage: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("storage: seek: negative position")
	}
	if abs != b.off && b.body != nil {
		_ = b.body.Close()
		b.body = nil
	}
	b.off = abs
	return abs, nil
}

func (b *s3Blob) Close() error {
	if b.body == nil {
		return nil
	}
	err := b.body.Close()
	b.body = nil
	return err
}

// RedirectURL returns a presigned GET URL of the object, valid for the store's redirect expiry, or ""
// when redirects are off.
func (b *s3Blob) RedirectURL(ctx context.Context) (string, error) {
	if b.s.redirect <= 0 {
		return "", nil
	}
	req, err := b.s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.s.bucket), Key: aws.String(b.key)},
		s3.WithPresignExpires(b.s.redirect))
	if err != nil {
		return "", fmt.Errorf("storage: presign %s: %w", b.key, err)
	}
	return req.URL, nil
}
