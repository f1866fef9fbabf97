// Package checks runs the registry of checks (stable IDs) against every target and builds the
// Matrix. Checks of one target run in dependency order; a check whose prerequisite did not pass is
// skipped with the reason; independent checks and different targets run concurrently. Probe
// objects are tracked and deleted whatever happens (errors, timeouts, interruption).
package checks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// Check IDs (stable: they are part of the JSON output contract).
const (
	Config      = "config"
	Credentials = "credentials"
	Endpoint    = "endpoint"
	Bucket      = "bucket"
	List        = "list"
	Write       = "write"
	Read        = "read"
	Delete      = "delete"
	Multipart   = "multipart"
	WALArchive  = "wal-archive"
	Backups     = "backups"
)

// Check is one entry of the registry.
type Check struct {
	ID       string
	Requires []string // must have passed (or warned)
	After    []string // must have finished, whatever their status
	Writes   bool     // writes to the store: skipped for sources and with --read-only
	Run      func(ctx context.Context, r *Run) Result
}

// Result is what a check returns.
type Result struct {
	Status      report.Status
	Message     string
	Remediation string
	// Proceed lets the checks that require this one run although it failed.
	Proceed bool
	// Blocks makes the checks that require this one skip even though it only warned (a bucket
	// that does not exist yet: nothing can be probed in it).
	Blocks bool
}

func pass(format string, a ...any) Result {
	return Result{Status: report.Pass, Message: fmt.Sprintf(format, a...)}
}

func skip(format string, a ...any) Result {
	return Result{Status: report.Skip, Message: fmt.Sprintf(format, a...)}
}

// Registry is every check, in report order.
var Registry = []Check{
	{ID: Config, Run: runConfig},
	{ID: Credentials, Requires: []string{Config}, Run: runCredentials},
	{ID: Endpoint, Requires: []string{Credentials}, Run: runEndpoint},
	{ID: Bucket, Requires: []string{Endpoint}, Run: runBucket},
	{ID: List, Requires: []string{Bucket}, Run: runList},
	{ID: Write, Requires: []string{Bucket}, Writes: true, Run: runWrite},
	{ID: Read, Requires: []string{Bucket}, After: []string{Write, List}, Run: runRead},
	{ID: Delete, Requires: []string{Write}, After: []string{Read}, Writes: true, Run: runDelete},
	{ID: Multipart, Requires: []string{Bucket}, Writes: true, Run: runMultipart}, // waits for delete's verdict itself
	{ID: Backups, Requires: []string{Bucket}, Run: runBackups},
	{ID: WALArchive, Requires: []string{Bucket}, After: []string{Backups}, Run: runWALArchive},
}

// Options for a run.
type Options struct {
	ReadOnly    bool                          // no write, read-back, delete or multipart anywhere
	Offline     bool                          // config and credentials only: no network at all
	Logf        providers.Logf                // --verbose: a line per check and HTTP request (may be nil)
	Progress    func(done, total, failed int) // called after each target (may be nil)
	Timeout     time.Duration                 // per target
	Concurrency int                           // targets checked at once (<= 0: 8)
	Now         func() time.Time
}

// Run is the state of one target's checks.
type Run struct {
	T    *targets.Target
	PT   *providers.Target
	Opts Options

	Driver providers.Driver
	Loc    providers.Location
	valFs  []providers.Finding // the provider's config findings, from the one Validate call
	Store  providers.Store
	Net    *providers.Net

	ProbeKey  string
	ProbeData []byte
	backups   []BackupInfo // completed backups of a source, oldest first

	mu      sync.Mutex
	results map[string]*report.Check
	blocked map[string]string           // check ID -> why its dependents skip
	done    map[string]chan struct{}    // closed when a check has its result
	proceed map[string]bool             // check IDs that failed but let dependents run
	pending map[string]bool             // probe keys that may exist in the store
	uploads map[string]providers.Upload // multipart uploads started and not finished, by key
	crossFs []providers.Finding
}

func (r *Run) status(id string) report.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.results[id]; c != nil {
		return c.Status
	}
	return ""
}

func (r *Run) trackUpload(key string, up providers.Upload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if up != nil {
		r.uploads[key] = up
	} else {
		delete(r.uploads, key)
	}
}

func (r *Run) track(key string, present bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if present {
		r.pending[key] = true
	} else {
		delete(r.pending, key)
	}
}

// Execute checks every target and returns the matrix. Cancelling ctx (a signal) stops the probes
// in flight; probe objects are still deleted.
func Execute(ctx context.Context, ts []*targets.Target, o Options) *report.Matrix {
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	runs := make([]*Run, len(ts))
	for i, t := range ts {
		runs[i] = newRun(t, o)
	}
	crossTargetFindings(runs)

	m := &report.Matrix{SchemaVersion: report.SchemaVersion, Targets: make([]*report.Target, len(ts))}
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	var pmu sync.Mutex
	done, failed := 0, 0
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m.Targets[i] = r.execute(ctx)
			if o.Progress != nil {
				pmu.Lock()
				done++
				for _, c := range m.Targets[i].Checks {
					if c.Status == report.Fail {
						failed++
						break
					}
				}
				o.Progress(done, len(runs), failed)
				pmu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		m.Interrupted = "the run was interrupted before all checks finished"
		if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
			m.Interrupted = cause.Error()
		}
	}
	m.Summarize()
	return m
}

func newRun(t *targets.Target, o Options) *Run {
	r := &Run{T: t, Opts: o, results: map[string]*report.Check{}, pending: map[string]bool{}, uploads: map[string]providers.Upload{}, blocked: map[string]string{}, proceed: map[string]bool{}}
	if t.Conf != nil {
		r.PT = t.ProviderTarget()
		r.PT.Offline = o.Offline
		r.Driver = providers.Get(t.Provider())
		if r.Driver != nil {
			r.Loc, r.valFs = r.Driver.Validate(r.PT)
		}
	}
	return r
}

// crossTargetFindings adds findings that compare targets of one Cluster: a source that points at
// the Cluster's own backup destination.
func crossTargetFindings(runs []*Run) {
	for _, b := range runs {
		if b.T.Role != targets.RoleBackup || b.Driver == nil {
			continue
		}
		for _, s := range runs {
			if s == b || s.T.Cluster != b.T.Cluster || s.Driver == nil {
				continue
			}
			if sameLocation(b.Loc, s.Loc, b.T.Conf.EndpointURL, s.T.Conf.EndpointURL) {
				f := providers.Failf(s.T.Field, "give the new Cluster its own serverName or destinationPath; it must not archive into the archive it restores from",
					"this %s is the Cluster's own backup destination (same endpoint, bucket, path and serverName %q): the new Cluster would archive WALs into its source", s.T.Role, s.Loc.ServerName)
				f.Soft = true
				s.crossFs = append(s.crossFs, f)
				g := providers.Failf(b.T.Field, f.Fix, "the backup destination is also %s %q of this Cluster (same bucket, path and serverName)", s.T.Role, s.T.Source)
				g.Soft = true
				b.crossFs = append(b.crossFs, g)
			}
		}
	}
}

func sameLocation(a, b providers.Location, ea, eb string) bool {
	norm := func(s string) string { return strings.TrimSuffix(strings.ToLower(s), "/") }
	return a.Provider == b.Provider && a.Bucket != "" && a.Bucket == b.Bucket && a.Account == b.Account &&
		strings.Trim(a.Prefix, "/") == strings.Trim(b.Prefix, "/") && a.ServerName == b.ServerName && norm(ea) == norm(eb)
}

func (r *Run) execute(parent context.Context) *report.Target {
	t := r.T
	out := &report.Target{
		ID:         t.ID,
		Cluster:    report.ClusterRef{Namespace: t.Cluster.Meta.Namespace, Name: t.Cluster.Meta.Name},
		Role:       t.Role,
		Provider:   t.Provider(),
		ServerName: t.ServerName,
	}
	if t.Conf != nil {
		out.DestinationPath = t.Conf.DestinationPath
	}
	ctx, cancel := context.WithTimeoutCause(parent, r.Opts.Timeout, fmt.Errorf("timed out after %s (--timeout)", r.Opts.Timeout))
	defer cancel()

	done := map[string]chan struct{}{}
	for _, c := range Registry {
		done[c.ID] = make(chan struct{})
	}
	r.done = done
	var wg sync.WaitGroup
	for _, c := range Registry {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[c.ID])
			for _, d := range append(append([]string{}, c.Requires...), c.After...) {
				<-done[d]
			}
			start := time.Now()
			res := r.decide(ctx, c)
			rc := &report.Check{ID: c.ID, Status: res.Status, Message: res.Message, Remediation: res.Remediation, DurationMs: time.Since(start).Milliseconds()}
			r.mu.Lock()
			r.results[c.ID] = rc
			if res.Blocks {
				r.blocked[c.ID] = res.Message
			}
			if res.Proceed {
				r.proceed[c.ID] = true
			}
			r.mu.Unlock()
		}()
	}
	wg.Wait()
	// After a timeout or a signal the verdict is due within a second: cleanup gets that long.
	budget := 10 * time.Second
	if ctx.Err() != nil {
		budget = 900 * time.Millisecond
	}
	out.Leftovers = r.cleanup(budget)
	if r.Net != nil {
		out.Requests = r.Net.Requests()
		r.Net.Close()
	}
	if r.Store != nil {
		out.Endpoint = r.Store.Endpoint().String()
	} else if r.Loc.Endpoint != nil {
		out.Endpoint = r.Loc.Endpoint.String()
	}
	for _, c := range Registry {
		out.Checks = append(out.Checks, *r.results[c.ID])
	}
	return out
}

// decide runs c unless a prerequisite failed, the target is read-only for it, or the run ended.
// A panic in a check becomes a failure of that check, never a crash with a stack trace.
func (r *Run) decide(ctx context.Context, c Check) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = Result{Status: report.Fail, Message: fmt.Sprintf("internal error in check %s: %v (please report it)", c.ID, p)}
		}
	}()
	for _, d := range c.Requires {
		r.mu.Lock()
		why, proceed := r.blocked[d], r.proceed[d]
		r.mu.Unlock()
		if st := r.status(d); st != report.Pass && st != report.Warn && !proceed {
			return skip("skipped: %s did not pass", d)
		}
		if why != "" {
			return skip("skipped: %s", why)
		}
	}
	if c.Writes {
		if r.T.ReadOnly() {
			return skip("skipped: a %s is read-only, never written", r.T.Role)
		}
		if r.Opts.ReadOnly {
			return skip("skipped: --read-only")
		}
	}
	if r.Opts.Offline && c.ID != Config && c.ID != Credentials {
		return skip("skipped: --offline")
	}
	if err := ctx.Err(); err != nil {
		return skip("skipped: %s", stopReason(ctx))
	}
	if r.Opts.Logf != nil {
		r.Opts.Logf("%s: %s: start", r.T.ID, c.ID)
	}
	res = c.Run(ctx, r)
	if ctx.Err() != nil && res.Status == report.Fail {
		res.Message = fmt.Sprintf("%s during %s: %s", stopReason(ctx), c.ID, res.Message)
	}
	return res
}

func stopReason(ctx context.Context) string {
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled && cause != context.DeadlineExceeded {
		return cause.Error()
	}
	if ctx.Err() == context.DeadlineExceeded {
		return "timed out"
	}
	return "interrupted"
}

// cleanup deletes every probe object that may still exist, within budget (the run's context may be
// cancelled already). Keys that could not be deleted are returned.
func (r *Run) cleanup(budget time.Duration) []string {
	r.mu.Lock()
	keys := make([]string, 0, len(r.pending))
	for k := range r.pending {
		keys = append(keys, k)
	}
	uploads := make(map[string]providers.Upload, len(r.uploads))
	for k, u := range r.uploads {
		uploads[k] = u
	}
	r.mu.Unlock()
	if (len(keys) == 0 && len(uploads) == 0) || r.Store == nil {
		return nil
	}
	var left []string
	deadline := time.Now().Add(budget)
	for k, u := range uploads {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if err := u.Abort(ctx); err != nil {
			if c, ok := u.(interface{ Confirmed() bool }); ok && !c.Confirmed() {
				left = append(left, "possibly an incomplete multipart upload of "+k+" (its creation was not confirmed)")
			} else {
				left = append(left, "incomplete multipart upload of "+k)
			}
		} else {
			r.trackUpload(k, nil)
		}
		cancel()
	}
	for _, k := range keys {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := r.Store.Delete(ctx, k)
		if err != nil && providers.KindOf(err) != providers.KindNotFound {
			// The write may never have landed: only name keys that are there (or unknown).
			if exists, xerr := r.Store.Exists(ctx, k); xerr != nil || exists {
				left = append(left, k)
				cancel()
				continue
			}
		}
		cancel()
		r.track(k, false)
	}
	return left
}
