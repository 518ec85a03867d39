package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/lifecycle"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Triggers of an execution (Harbor's names).
const (
	TriggerManual   = "MANUAL"
	TriggerSchedule = "SCHEDULE"
)

// StaleAfter is how long a Running execution may go without a heartbeat before another node takes it
// for dead (its node crashed) and may start the policy again.
const StaleAfter = 10 * time.Minute

// Store is what the service reads and writes.
type Store interface {
	meta.RetentionStore
	meta.LifecycleStore
	GetProject(ctx context.Context, id int64) (*meta.Project, error)
}

// Flusher writes the pull times gathered in memory (local.Service.FlushPulls).
type Flusher interface {
	FlushPulls(ctx context.Context) error
}

// Options are the service's dependencies. Store and Manifests are required.
type Options struct {
	Store     Store
	Manifests lifecycle.Manifests
	// Remover deletes (nil: one deleting through Store; pass one over the caching wrappers).
	Remover *lifecycle.Remover
	Flusher Flusher          // nil: pull times are read as stored
	Now     func() time.Time // nil: time.Now
	Log     *slog.Logger     // nil: discarded
}

// Service runs retention executions and the schedule.
type Service struct {
	o       Options
	base    context.Context // of the executions started in the background; cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	lastRun time.Time // this node's previous schedule tick
}

// New returns a Service.
func New(o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Remover == nil {
		o.Remover = lifecycle.NewRemover(o.Store, o.Log)
	}
	base, cancel := context.WithCancel(context.Background())
	return &Service{o: o, base: base, cancel: cancel}
}

// Close stops the executions running in the background (each ends as Error at its next repository)
// and waits for them.
func (s *Service) Close() {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// LoadPolicy reads and decodes a stored policy.
func (s *Service) LoadPolicy(ctx context.Context, id int64) (*Policy, error) {
	row, err := s.o.Store.GetRetentionPolicy(ctx, id)
	if err != nil {
		return nil, err
	}
	return decode(row)
}

func decode(row *meta.RetentionPolicy) (*Policy, error) {
	var p Policy
	if err := json.Unmarshal([]byte(row.Policy), &p); err != nil {
		return nil, fmt.Errorf("retention policy %d: %w", row.ID, err)
	}
	p.ID = row.ID
	return &p, nil
}

// Execute runs the policy to its end and returns the finished execution. ErrConflict (meta) when an
// execution of the policy is running on any node, or when slot is not zero and that slot ran already.
func (s *Service) Execute(ctx context.Context, policyID int64, trigger string, dryRun bool, slot time.Time) (*meta.RetentionExecution, error) {
	e, p, err := s.begin(ctx, policyID, trigger, dryRun, slot)
	if err != nil {
		return nil, err
	}
	s.run(ctx, e, p)
	return s.o.Store.GetRetentionExecution(ctx, e.ID)
}

// Start starts an execution and runs it in the background; it returns once the execution is recorded.
func (s *Service) Start(ctx context.Context, policyID int64, dryRun bool) (*meta.RetentionExecution, error) {
	e, p, err := s.begin(ctx, policyID, TriggerManual, dryRun, time.Time{})
	if err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Detached from the request on purpose: the run outlives it, until Close.
		s.run(s.base, e, p)
	}()
	return e, nil
}

// Wait waits for the executions started in the background.
func (s *Service) Wait() { s.wg.Wait() }

func (s *Service) begin(ctx context.Context, policyID int64, trigger string, dryRun bool, slot time.Time) (*meta.RetentionExecution, *Policy, error) {
	p, err := s.LoadPolicy(ctx, policyID)
	if err != nil {
		return nil, nil, err
	}
	now := s.o.Now()
	e := &meta.RetentionExecution{PolicyID: policyID, Trigger: trigger, DryRun: dryRun, Slot: slot, StartTime: now}
	if err := s.o.Store.StartRetentionExecution(ctx, e, now.Add(-StaleAfter)); err != nil {
		return nil, nil, err
	}
	return e, p, nil
}

// run evaluates every repository of the policy's project and records a task for each one in scope.
func (s *Service) run(ctx context.Context, e *meta.RetentionExecution, p *Policy) {
	status := meta.RetentionSucceed
	if err := s.runRepos(ctx, e, p); errors.Is(err, errStopped) {
		status = meta.RetentionStopped
	} else if err != nil {
		status = meta.RetentionError
		s.o.Log.ErrorContext(ctx, "retention execution failed", "policy", p.ID, "execution", e.ID, "err", err)
	}
	// Recorded even when ctx ended (shutdown), so the execution does not stay Running.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.o.Store.FinishRetentionExecution(fctx, e.ID, status, s.o.Now()); err != nil {
		s.o.Log.ErrorContext(ctx, "recording the end of a retention execution failed", "execution", e.ID, "err", err)
	}
}

var errStopped = errors.New("stopped")

func (s *Service) runRepos(ctx context.Context, e *meta.RetentionExecution, p *Policy) error {
	if s.o.Flusher != nil {
		if err := s.o.Flusher.FlushPulls(ctx); err != nil {
			s.o.Log.WarnContext(ctx, "writing pending pull times before retention failed", "err", err)
		}
	}
	project, err := s.o.Store.GetProject(ctx, p.Scope.Ref)
	if err != nil {
		return err
	}
	repos, err := lifecycle.Load(ctx, s.o.Store, s.o.Manifests, project.ID, "")
	if err != nil {
		return err
	}
	var failed error
	for _, r := range repos {
		st, err := s.o.Store.HeartbeatRetentionExecution(ctx, e.ID, s.o.Now())
		if err != nil {
			return err
		}
		if st == meta.RetentionStopping {
			return errStopped
		}
		if err := s.runRepo(ctx, e, p, project, r); err != nil {
			failed = err // the other repositories still run
		}
	}
	return failed
}

// runRepo decides, removes (unless a dry run) and records the task of one repository.
func (s *Service) runRepo(ctx context.Context, e *meta.RetentionExecution, p *Policy, project *meta.Project, r *lifecycle.Repo) error {
	start := s.o.Now()
	cands := Candidates(r)
	d := p.Decide(strings.TrimPrefix(r.Name, project.Name+"/"), cands, start)
	if !d.InScope {
		return nil
	}
	targets := make([]string, len(d.Remove))
	for i, c := range d.Remove {
		targets[i] = c.Artifact.Digest
	}
	plan := lifecycle.Plan(r, targets)
	var log strings.Builder
	fmt.Fprintf(&log, "repository %s: %d candidates, %d retained, %d to remove (with cascades: %d)%s\n",
		r.Name, len(cands), len(d.Retain), len(d.Remove), len(plan), map[bool]string{true: " [dry run]"}[e.DryRun])
	for _, c := range d.Retain {
		fmt.Fprintf(&log, "RETAIN %s tags=%s pushed=%s last_pull=%s\n", c.Artifact.Digest, strings.Join(c.Tags, ","),
			c.Artifact.PushTime.Format(time.RFC3339), c.LastPull.Format(time.RFC3339))
	}
	for _, rm := range plan {
		fmt.Fprintf(&log, "REMOVE %s tags=%s origin=%s reason=%q %s\n", rm.Artifact.Digest, strings.Join(rm.Tags, ","),
			rm.Artifact.Origin, rm.Reason, rm.Cause)
	}
	status := meta.RetentionSucceed
	var err error
	if !e.DryRun && len(plan) > 0 {
		if _, err = s.o.Remover.Remove(ctx, r.Name, plan); err != nil {
			status = meta.RetentionError
			fmt.Fprintf(&log, "ERROR %v\n", err)
		}
	}
	t := &meta.RetentionTask{ExecutionID: e.ID, Repository: r.Name, Status: status, Total: int64(len(cands)),
		Retained: int64(len(d.Retain)), Log: log.String(), StartTime: start, EndTime: s.o.Now()}
	if terr := s.o.Store.AddRetentionTask(ctx, t); terr != nil {
		return errors.Join(err, terr)
	}
	return err
}
