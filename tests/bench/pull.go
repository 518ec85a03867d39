package bench

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// timedGet downloads u on a new connection and checks the length; with h, the body is hashed too and
// its digest returned. The hash runs on its own goroutine beside the reads (a ring of 8 buffers), so
// that the client's hashing bounds the pull as little as it can; the time is until the last byte
// arrived, the digest is waited for after it.
func timedGet(ctx context.Context, u string, size int64, h hash.Hash) (Pull, digest.Digest, error) {
	tr := &http.Transport{DisableCompression: true, ReadBufferSize: 64 << 10, ResponseHeaderTimeout: 5 * time.Minute}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Pull{}, "", err
	}
	busy0, total0 := machineCPU()
	t0 := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return Pull{}, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return Pull{}, "", fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	hs := newHashPipe(h)
	var (
		n          int64
		allButLast time.Duration
	)
	for {
		buf := hs.buffer()
		m, rerr := resp.Body.Read(buf)
		hs.write(buf[:m])
		n += int64(m)
		if allButLast == 0 && n >= size-1 {
			allButLast = time.Since(t0)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	p := Pull{Elapsed: time.Since(t0), AllButLast: allButLast, Bytes: n}
	if busy1, total1 := machineCPU(); total1 > total0 {
		p.Busy = float64(busy1-busy0) / float64(total1-total0)
	}
	got := hs.sum()
	if err != nil {
		return p, "", fmt.Errorf("GET %s: after %d bytes: %w", u, n, err)
	}
	if n != size {
		return p, "", fmt.Errorf("GET %s: %d bytes, want %d", u, n, size)
	}
	return p, got, nil
}

// hashPipe hashes written buffers on a goroutine of its own; without a hash it only lends a buffer.
type hashPipe struct {
	h          hash.Hash
	free, full chan []byte
	done       chan struct{}
	one        []byte
}

func newHashPipe(h hash.Hash) *hashPipe {
	const bufs, size = 8, 256 << 10
	p := &hashPipe{h: h}
	if h == nil {
		p.one = make([]byte, size)
		return p
	}
	p.free, p.full, p.done = make(chan []byte, bufs), make(chan []byte, bufs), make(chan struct{})
	for range bufs {
		p.free <- make([]byte, size)
	}
	go func() {
		defer close(p.done)
		for b := range p.full {
			h.Write(b)
			p.free <- b[:cap(b)]
		}
	}()
	return p
}

// buffer returns a buffer to read into; it belongs to the caller until write.
func (p *hashPipe) buffer() []byte {
	if p.h == nil {
		return p.one
	}
	return <-p.free
}

// write hands b (from buffer) over to be hashed.
func (p *hashPipe) write(b []byte) {
	if p.h != nil {
		p.full <- b
	}
}

// sum waits for the hash of everything written and returns its digest ("" without a hash).
func (p *hashPipe) sum() digest.Digest {
	if p.h == nil {
		return ""
	}
	close(p.full)
	<-p.done
	return digest.NewDigest(digest.SHA256, p.h)
}

// CPUTime returns pid's user plus system CPU time so far (from /proc/<pid>/stat, in clock ticks of
// 10 ms).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("bench: unexpected /proc/%d/stat", pid)
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime: fields 14 and 15 of the line
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// machineCPU returns the machine's busy and total CPU time so far, in clock ticks summed over every CPU
// (the first line of /proc/stat; busy is all but idle and iowait), or zeros when it cannot be read.
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
