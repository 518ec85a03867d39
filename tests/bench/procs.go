package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// listenPrefix starts the line a child prints on stdout once it listens: "BENCH-LISTEN 127.0.0.1:port".
const listenPrefix = "BENCH-LISTEN "

// stopTimeout is how long a process gets after SIGTERM before it is killed.
const stopTimeout = 30 * time.Second

// Proc is a process started by the run. Stop ends it; it is also killed when the parent dies
// (Pdeathsig), and children of this package exit when their stdin (a pipe from the parent) closes.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited; err is then set
	err  error
	in   io.Closer // the write end of the child's stdin
}

// startProc starts name with args, its stderr appended to logPath. With pipeStdout, its stdout is
// returned for waitListen; otherwise it goes to the log too.
//
// cpus, when not empty, is a CPU list ("1", "1-3") the process is confined to from its first instruction:
// it is started through taskset(1), which execs it (same pid), so every thread inherits the affinity.
func startProc(name, logPath string, env []string, pipeStdout bool, cpus, path string, args ...string) (*Proc, io.Reader, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = logf.Close() }() // the child holds its own descriptor
	if cpus != "" {
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			return nil, nil, fmt.Errorf("start %s on CPUs %s: %w", name, cpus, err)
		}
		path, args = taskset, append([]string{"-c", cpus, path}, args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Our own pipe rather than StdoutPipe: Wait must not close the read end under a reader.
	var stdout, stdoutW *os.File
	if pipeStdout {
		if stdout, stdoutW, err = os.Pipe(); err != nil {
			return nil, nil, err
		}
		cmd.Stdout = stdoutW
	} else {
		cmd.Stdout = logf
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	err = cmd.Start()
	if stdoutW != nil {
		_ = stdoutW.Close() // the child holds its own
	}
	if err != nil {
		if stdout != nil {
			_ = stdout.Close()
		}
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{}), in: stdin}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if stdout == nil {
		return p, nil, nil
	}
	return p, stdout, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to stopTimeout, then kills. It returns the exit error of a process that
// did not end cleanly after SIGTERM (nil when it already ended or exited 0).
func (p *Proc) Stop() error {
	if p == nil {
		return nil
	}
	_ = p.in.Close()
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var exit *exec.ExitError
		if errors.As(p.err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
			return nil // a child that dies of SIGTERM (no handler) is a clean stop here
		}
		return p.err
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM: killed", p.Name, stopTimeout)
	}
}

// waitListen reads the child's stdout until its listen line and returns the address; the rest of the
// output is discarded in the background.
func waitListen(ctx context.Context, p *Proc, out io.Reader, timeout time.Duration) (string, error) {
	type res struct {
		addr string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		if c, ok := out.(io.Closer); ok {
			defer func() { _ = c.Close() }()
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), listenPrefix); ok {
				ch <- res{addr: strings.TrimSpace(addr)}
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		ch <- res{err: fmt.Errorf("%s: no listen line on stdout: %w", p.Name, err)}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.addr, r.err
	case <-p.done:
		return "", fmt.Errorf("%s exited before listening: %w", p.Name, exitErr(p.err))
	case <-t.C:
		return "", fmt.Errorf("%s: not listening after %s", p.Name, timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// exitErr is err, or a stand-in for the nil error of a process that exited 0.
func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// Memory is a process's resident set from /proc/<pid>/status, in bytes.
type Memory struct {
	RSS  int64 // VmRSS
	Peak int64 // VmHWM: the peak since start or since ResetPeak
}

// ReadMemory reads VmRSS and VmHWM of pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(string(b))
}

func parseStatus(s string) (Memory, error) {
	var m Memory
	var found int
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("bench: unexpected /proc status line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("bench: /proc status %s: %w", k, err)
		}
		if k == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return m, errors.New("bench: VmRSS or VmHWM missing from /proc status")
	}
	return m, nil
}

// ResetPeak resets pid's VmHWM to its current RSS (writing 5 to /proc/<pid>/clear_refs), so a later
// ReadMemory reports the peak of what happened in between.
func ResetPeak(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// childEnv is the environment of started processes: the parent's without BERTH_* settings (so a
// developer's configuration cannot leak into a measured server) and without GODEBUG/GOGC overrides.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "BERTH_") || k == "GODEBUG" || k == "GOGC" || k == "GOMEMLIMIT" || k == "GOMAXPROCS" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
