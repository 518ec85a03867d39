package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/berth-registry/berth/src/pkg/storage/s3test"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// failingTransport fails the requests for which fail is true, as a cut connection would.
type failingTransport struct {
	fail func(*http.Request) bool
}

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.fail(r) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, errors.New("test: connection cut")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A commit whose multipart upload fails half-way aborts it: no object, no multipart upload left.
func TestS3CommitCutMidMultipartLeavesNothing(t *testing.T) {
	e := newS3Env(t)
	var parts atomic.Int32
	cut := failingTransport{fail: func(r *http.Request) bool {
		return r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" && parts.Add(1) > 0
	}}
	s := e.open(t, func(o *S3Options) { o.HTTPClient = &http.Client{Transport: cut} })
	data := content(3*testPartSize + 1)
	d := digest.FromBytes(data)
	_, err := s.Put(context.Background(), d, bytes.NewReader(data))
	require.Error(t, err)
	require.Positive(t, parts.Load())
	require.Empty(t, e.keys(t))
	require.Empty(t, e.multipartUploads(t))
	require.Empty(t, files(t, s.tmp))
}

// A node that died during a commit leaves a multipart upload at the blob's key; it is not visible, and
// PurgeUploads aborts it once it is older than the cutoff.
func TestS3PurgeAbortsCrashedCommits(t *testing.T) {
	e := newS3Env(t)
	s := e.open(t, nil)
	ctx := context.Background()
	d := digest.FromBytes([]byte("crashed"))
	mpu, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(s.blobKey(d))})
	require.NoError(t, err)
	_, err = s.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(s.bucket), Key: aws.String(s.blobKey(d)), UploadId: mpu.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(content(testPartSize)), ContentLength: aws.Int64(testPartSize)})
	require.NoError(t, err)
	_, err = s.Stat(ctx, d)
	require.ErrorIs(t, err, ErrNotFound)
	n, err := s.PurgeUploads(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, e.multipartUploads(t), 1, "a recent one may still be running")
	_, err = s.PurgeUploads(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Empty(t, e.multipartUploads(t))
	require.Empty(t, e.keys(t))
}

// Objects above the single-copy limit are copied in parts at commit.
func TestS3UploadCommitMultipartCopy(t *testing.T) {
	e := newS3Env(t)
	s := e.open(t, nil)
	s.copySize = testPartSize + 1
	data := content(2*testPartSize + 3)
	d := digest.FromBytes(data)
	id := chunked(t, []Store{s}, data)
	_, err := s.CommitUpload(context.Background(), id, d)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, readAll(t, s, d)))
	require.Empty(t, e.multipartUploads(t))
}

func TestS3RedirectURL(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	data := content(5000)
	d := digest.FromBytes(data)
	off := e.open(t, nil)
	_, err := off.Put(ctx, d, bytes.NewReader(data))
	require.NoError(t, err)
	b, err := off.Open(ctx, d)
	require.NoError(t, err)
	u, err := b.(Redirecter).RedirectURL(ctx)
	require.NoError(t, err)
	require.Empty(t, u, "redirects are off")
	require.NoError(t, b.Close())

	on := e.open(t, func(o *S3Options) { o.Redirect, o.RedirectExpiry = true, time.Minute })
	b, err = on.Open(ctx, d)
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	u, err = b.(Redirecter).RedirectURL(ctx)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(u, e.srv.Endpoint+"/"), u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=100-199")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusPartialContent, resp.StatusCode, string(got))
	require.Equal(t, data[100:200], got)
}

// requestLog records the method and Range of every request sent to S3.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.reqs = append(l.reqs, strings.TrimSpace(r.Method+" "+r.Header.Get("Range")))
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// take returns the requests recorded since the last take.
func (l *requestLog) take() (out []string) {
	l.mu.Lock()
	out, l.reqs = l.reqs, nil
	l.mu.Unlock()
	return out
}

// TestS3ReadsStreamOneGet: a whole-blob read is one GET without Range (no HEAD, no request per read),
// copied by WriteTo; a Seek costs one ranged GET; a writer that fails stops the copy.
func TestS3ReadsStreamOneGet(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	log := &requestLog{}
	s := e.open(t, func(o *S3Options) { o.HTTPClient = &http.Client{Transport: log} })
	data := content(3*copyChunk + 17)
	d := digest.FromBytes(data)
	_, err := s.Put(ctx, d, bytes.NewReader(data))
	require.NoError(t, err)
	log.take()

	b, err := s.Open(ctx, d)
	require.NoError(t, err)
	var out bytes.Buffer
	n, err := io.Copy(&out, b) // through WriteTo
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.True(t, bytes.Equal(data, out.Bytes()))
	require.Equal(t, []string{"GET"}, log.take())

	_, err = b.Seek(copyChunk+5, io.SeekStart)
	require.NoError(t, err)
	p := make([]byte, 10)
	_, err = io.ReadFull(b, p)
	require.NoError(t, err)
	require.Equal(t, data[copyChunk+5:copyChunk+15], p)
	require.Equal(t, []string{fmt.Sprintf("GET bytes=%d-", copyChunk+5)}, log.take())
	require.NoError(t, b.Close())

	b, err = s.Open(ctx, d)
	require.NoError(t, err)
	fw := &failingWriter{after: copyChunk}
	n, err = b.(io.WriterTo).WriteTo(fw)
	require.ErrorIs(t, err, errBoom)
	require.LessOrEqual(t, n, int64(copyChunk), "the copy stops at the failed write")
	require.NoError(t, b.Close())

	_, err = s.Open(ctx, digest.FromString("absent"))
	require.ErrorIs(t, err, ErrNotFound)
}

// failingWriter accepts after bytes, then fails.
type failingWriter struct{ after, n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.after {
		return 0, errBoom
	}
	w.n += len(p)
	return len(p), nil
}

func TestNewS3Errors(t *testing.T) {
	e := newS3Env(t)
	_, err := NewS3(context.Background(), S3Options{Bucket: "absent-bucket", Endpoint: e.srv.Endpoint, PathStyle: true,
		AccessKey: e.srv.AccessKey, SecretKey: e.srv.SecretKey, TempDir: t.TempDir()})
	require.Error(t, err)
	_, err = NewS3(context.Background(), S3Options{Bucket: e.bucket, PartSize: 1 << 20, TempDir: t.TempDir()})
	require.ErrorContains(t, err, "part size")
}

// TestS3SpliceReads: with the SDK's own client, object GETs go through a spliceClient: a blob served by
// net/http arrives whole (copied socket to socket), from the start and from an offset, through Read
// and through WriteTo; a connection read to its end is kept for the next GET; a GET whose context ends
// fails. The server keeps connections alive (versitygw's default closes them).
func TestS3SpliceReads(t *testing.T) {
	srv := s3test.Start(t, "--keep-alive")
	e := &s3Env{srv: srv, bucket: srv.Bucket(t), prefix: "splice"}
	ctx := context.Background()
	s := e.open(t, nil)
	sc, ok := s.client.Options().HTTPClient.(*spliceClient)
	require.True(t, ok, "the SDK's client is wrapped")
	data := content(2<<20 + 7)
	d := digest.FromBytes(data)
	_, err := s.Put(ctx, d, bytes.NewReader(data))
	require.NoError(t, err)

	served := make(chan struct{}, 1) // a handler closed its blob (its connection is back in the pool)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		b, err := s.Open(r.Context(), d)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer func() { _ = b.Close() }()
		if _, isSplice := b.(*s3Blob).body.(*spliceBody); !isSplice {
			http.Error(w, "not spliced", http.StatusInternalServerError)
			return
		}
		off, _ := strconv.ParseInt(r.URL.Query().Get("off"), 10, 64)
		_, _ = b.(io.Seeker).Seek(off, io.SeekStart)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(int64(len(data))-off, 10))
		_, _ = io.Copy(w, b) // s3Blob.WriteTo -> spliceBody.WriteTo -> net/http's ReadFrom
	}))
	defer web.Close()
	for _, off := range []int{0, 0, 100_003} {
		resp, err := http.Get(web.URL + "?off=" + strconv.Itoa(off))
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		<-served
		require.Equal(t, http.StatusOK, resp.StatusCode, string(got[:min(len(got), 200)]))
		require.True(t, bytes.Equal(data[off:], got), "offset %d", off)
	}
	sc.mu.Lock()
	idle := len(sc.idle)
	sc.mu.Unlock()
	require.Equal(t, 1, idle, "a connection read to its end is kept and serves the next GET")
	sc.mu.Lock()
	addr := sc.idle[0].addr
	sc.idle[0].since = time.Now().Add(-2 * spliceIdleTimeout)
	sc.mu.Unlock()
	require.Nil(t, sc.take(addr), "a connection idle too long is dropped")
	require.Empty(t, sc.idle)
	resp, err := http.Get(web.URL)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	<-served
	sc.mu.Lock()
	require.Len(t, sc.idle, 1)
	_ = sc.idle[0].tcp.Close() // as if the server had closed it: the next GET dials again
	sc.mu.Unlock()

	// Read (not WriteTo) through a reader-only wrapper; a Seek starts a ranged GET.
	b, err := s.Open(ctx, d)
	require.NoError(t, err)
	got, err := io.ReadAll(struct{ io.Reader }{b})
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	_, err = b.(io.Seeker).Seek(5, io.SeekStart)
	require.NoError(t, err)
	p := make([]byte, 10)
	_, err = io.ReadFull(b, p)
	require.NoError(t, err)
	require.Equal(t, data[5:15], p)
	require.NoError(t, b.Close())

	_, err = s.Open(ctx, digest.FromString("absent")) // S3's 404 and its error body come back as usual
	require.ErrorIs(t, err, ErrNotFound)

	cctx, cancel := context.WithCancel(ctx)
	b, err = s.Open(cctx, d)
	require.NoError(t, err)
	conn := b.(*s3Blob).body.(*spliceBody).sc.tcp
	cancel()
	require.Eventually(t, func() bool { return conn.SetReadDeadline(time.Time{}) != nil },
		5*time.Second, time.Millisecond, "the context's end closes the connection")
	_, err = io.Copy(io.Discard, b)
	require.Error(t, err, "a GET whose context ended fails")
	require.NoError(t, b.Close())
}
