// Package checks runs the registry of checks (stable IDs) against every target and builds the
// Matrix. Checks of one target run in dependency order; a check whose prerequisite did not pass is
// skipped with the reason; independent checks and different targets run concurrently. Probe
// objects are tracked and deleted whatever happens (errors, timeouts, interruption).
package checks

import (
	"context"
	"fmt"
	"net"
	"sort"
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
	SystemID    = "system-id"
)

// multipartUpload is an internal step (no column): it uploads the multipart probe's parts while
// write, read and delete run; multipart then completes or aborts the upload.
const multipartUpload = "multipart-upload"

// Check is one entry of the registry. Every dependency between checks is declared here.
type Check struct {
	ID       string
	Requires []string // must have passed (or warned), else this check is skipped
	// RequiresOnWritable are further prerequisites for targets that are written (a backup
	// destination without --read-only).
	RequiresOnWritable []string
	After              []string // must have finished, whatever their status
	Writes             bool     // writes to the store: skipped for sources and with --read-only
	Internal           bool     // a step with no column in the matrix; its result reaches its dependents
	Run                func(ctx context.Context, r *Run) Result
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
	// Value is what the check hands to the checks that depend on it (see output).
	Value any
	// Window is a source's recovery window (wal-archive), reported with the target.
	Window *report.Window
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
	{ID: StorePolicies, Requires: []string{Bucket}, Run: runStorePolicies},
	{ID: Write, Requires: []string{Bucket}, After: []string{StorePolicies}, Writes: true, Run: runWrite},
	{ID: Read, Requires: []string{Bucket}, RequiresOnWritable: []string{Write}, After: []string{List}, Run: runRead},
	{ID: Overwrite, Requires: []string{Write}, After: []string{Read}, Writes: true, Run: runOverwrite},
	{ID: Delete, Requires: []string{Write}, After: []string{Read, Overwrite}, Writes: true, Run: runDelete},
	{ID: multipartUpload, Requires: []string{Bucket}, After: []string{StorePolicies}, Writes: true, Internal: true, Run: runMultipartUpload},
	{ID: Multipart, Requires: []string{Bucket}, After: []string{multipartUpload, Delete}, Writes: true, Run: runMultipart},
	{ID: Backups, Requires: []string{Bucket}, Run: runBackups},
	{ID: WALArchive, Requires: []string{Bucket}, After: []string{Backups}, Run: runWALArchive},
	{ID: SystemID, Requires: []string{Bucket}, After: []string{List, Backups, WALArchive}, Run: runSystemID},
}

// Columns returns the IDs of the checks that have a column in the matrix, in report order.
func Columns() []string {
	var out []string
	for _, c := range Registry {
		if !c.Internal {
			out = append(out, c.ID)
		}
	}
	return out
}

// Options for a run.
type Options struct {
	Registry    *providers.Registry           // the providers (providers/all.Registry)
	Resolver    *net.Resolver                 // host name resolution (nil: the system's)
	ReadOnly    bool                          // no write, read-back, delete or multipart anywhere
	Offline     bool                          // config and credentials only: no network at all
	Deep        bool                          // probes that cost more: multipart parts of unequal sizes (another 5 MiB)
	Logf        providers.Logf                // --verbose: a line per check and HTTP request (may be nil)
	Progress    func(done, total, failed int) // called after each target (may be nil)
	Timeout     time.Duration                 // per target (<= 0: 60 s)
	Concurrency int                           // targets checked at once (<= 0: 16)
	Now         func() time.Time
}

// Run is the state of one target's checks. Checks read what earlier checks found through output.
type Run struct {
	t     *targets.Target
	pt    *providers.Target
	opts  Options
	drv   providers.Driver
	loc   providers.Location
	valFs []providers.Finding // the provider's config findings, from the one Validate call

	shared *storeProbes // probes made once per store, across targets

	mu      sync.Mutex
	results map[string]Result
	pending map[string]bool             // probe keys that may exist in the store
	uploads map[string]providers.Upload // multipart uploads started and not finished, by key
	crossFs []providers.Finding
}

// output returns the value check id handed on, when it has finished with one of type T. A check
// may only ask for checks it (transitively) requires or runs after.
func output[T any](r *Run, id string) (T, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.results[id].Value.(T)
	return v, ok
}

// connection is what credentials hands on: the client and its network stack.
type connection struct {
	store providers.Store
	net   *providers.Net
}

// store is the client credentials opened (nil when it did not).
func (r *Run) store() providers.Store {
	c, _ := output[connection](r, Credentials)
	return c.store
}

func (r *Run) status(id string) report.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results[id].Status
}

// writable reports whether the target may be written in this run.
func (r *Run) writable() bool { return !r.t.ReadOnly() && !r.opts.ReadOnly }

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
	if o.Registry == nil {
		o.Registry = providers.NewRegistry()
	}
	runs := make([]*Run, len(ts))
	shared := &storeProbes{m: map[string]*storeProbe{}}
	for i, t := range ts {
		runs[i] = newRun(t, o)
		runs[i].shared = shared
	}
	crossTargetFindings(runs)
	sharedDestinations(runs)

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
	r := &Run{t: t, opts: o, results: map[string]Result{}, pending: map[string]bool{}, uploads: map[string]providers.Upload{}}
	if t.Conf != nil {
		r.pt = t.ProviderTarget()
		r.pt.Offline = o.Offline
		r.drv = t.Driver
		if r.drv != nil {
			r.loc, r.valFs = r.drv.Validate(r.pt)
		}
	}
	return r
}

// crossTargetFindings adds findings that compare targets of one Cluster: a source that points at
// the Cluster's own backup destination (it would archive into what it restores from or follows),
// and the entry describing the Cluster itself (spec.replica.self), which must name that
// destination since its peers restore from it.
func crossTargetFindings(runs []*Run) {
	for _, s := range runs {
		if s.t.Role != targets.RoleSelf {
			continue
		}
		var dests []string
		same := false
		for _, b := range runs {
			if b.t.Cluster != s.t.Cluster || b.t.Role != targets.RoleBackup || b.drv == nil {
				continue
			}
			dests = append(dests, fmt.Sprintf("%s (%s)", b.t.Conf.DestinationPath, b.loc.ServerName))
			same = same || s.drv != nil && sameLocation(b.loc, s.loc, b.t.Conf.EndpointURL, s.t.Conf.EndpointURL)
		}
		switch {
		case s.drv == nil || same:
		case len(dests) == 0:
			s.crossFs = append(s.crossFs, providers.Warnf(s.t.Field, "configure the Cluster's backup (spec.plugins barman-cloud entry with isWALArchiver, or spec.backup.barmanObjectStore) to write where this entry points",
				"this entry describes the Cluster's own archive for its peers, but the Cluster has no backup destination cnpg-preflight can see: its peers would find no WAL there"))
		default:
			s.crossFs = append(s.crossFs, providers.Warnf(s.t.Field, "point this entry at the Cluster's backup destination (same destinationPath, endpoint and serverName), in this manifest and in its peers'",
				"this entry describes the Cluster's own archive for its peers, but it names %s (%s) while the Cluster archives to %s: peers that restore from it would not find this Cluster's WAL",
				s.t.Conf.DestinationPath, s.loc.ServerName, strings.Join(dests, ", ")))
		}
	}
	for _, b := range runs {
		if b.t.Role != targets.RoleBackup || b.drv == nil {
			continue
		}
		for _, s := range runs {
			if s == b || s.t.Cluster != b.t.Cluster || s.drv == nil || !s.t.ReadOnly() || s.t.Role == targets.RoleSelf {
				continue
			}
			if sameLocation(b.loc, s.loc, b.t.Conf.EndpointURL, s.t.Conf.EndpointURL) {
				f := providers.Failf(s.t.Field, "give the new Cluster its own serverName or destinationPath; it must not archive into the archive it restores from",
					"this %s is the Cluster's own backup destination (same endpoint, bucket, path and serverName %q): the Cluster would archive WALs into its source", s.t.Role, s.loc.ServerName)
				if s.t.ServerNameNote != "" { // the plugin's default, not a deliberate choice
					f.Msg += "; " + s.t.ServerNameNote
					f.Fix = "set parameters.serverName of the external cluster to the serverName its archive is written with"
				}
				f.Soft = true
				s.crossFs = append(s.crossFs, f)
				g := providers.Failf(b.t.Field, f.Fix, "the backup destination is also %s %q of this Cluster (same bucket, path and serverName)", s.t.Role, s.t.Source)
				g.Soft = true
				b.crossFs = append(b.crossFs, g)
			}
		}
	}
}

// sharedDestinations fails, together, the backup targets of different Clusters that would write
// under the same endpoint, bucket, path and serverName: each names the others. Sources shared by
// several Clusters are fine (they are only read). Targets of one Cluster (an in-tree and a plugin
// backup during a migration) are not compared here.
func sharedDestinations(runs []*Run) {
	groups := map[string][]*Run{}
	for _, b := range runs {
		if b.t.Role != targets.RoleBackup || b.drv == nil || b.loc.Bucket == "" {
			continue
		}
		k := locationKey(b.loc, b.t.Conf.EndpointURL)
		groups[k] = append(groups[k], b)
	}
	clusterOf := func(r *Run) string { return r.t.Cluster.Meta.Namespace + "/" + r.t.Cluster.Meta.Name }
	for _, g := range groups {
		for _, b := range g {
			var others []string
			for _, o := range g {
				if clusterOf(o) != clusterOf(b) {
					others = append(others, o.t.ID)
				}
			}
			if len(others) == 0 {
				continue
			}
			f := providers.Failf(b.t.Field, "give each Cluster its own serverName (barmanObjectStore.serverName, or the plugin's parameters.serverName) or destinationPath",
				"%d other Cluster(s) write their backups and WAL to the same place (same endpoint, %s, path and serverName %q): %s; two clusters archiving into one folder overwrite each other's WAL and mix their backups, which shows only at restore time",
				len(others), b.drv.Info().BucketNoun, b.loc.ServerName, strings.Join(others, ", "))
			f.Soft = true
			b.crossFs = append(b.crossFs, f)
		}
	}
}

// locationKey identifies the folder a target's objects live in.
func locationKey(l providers.Location, endpointURL string) string {
	return strings.Join([]string{l.Provider, strings.TrimSuffix(strings.ToLower(endpointURL), "/"), l.Account, l.Bucket, strings.Trim(l.Prefix, "/"), l.ServerName}, "\x00")
}

func sameLocation(a, b providers.Location, ea, eb string) bool {
	norm := func(s string) string { return strings.TrimSuffix(strings.ToLower(s), "/") }
	return a.Provider == b.Provider && a.Bucket != "" && a.Bucket == b.Bucket && a.Account == b.Account &&
		strings.Trim(a.Prefix, "/") == strings.Trim(b.Prefix, "/") && a.ServerName == b.ServerName && norm(ea) == norm(eb)
}

func (r *Run) execute(parent context.Context) *report.Target {
	t := r.t
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
	ctx, cancel := context.WithTimeoutCause(parent, r.opts.Timeout, fmt.Errorf("timed out after %s (--timeout)", r.opts.Timeout))
	defer cancel()

	done := map[string]chan struct{}{}
	for _, c := range Registry {
		done[c.ID] = make(chan struct{})
	}
	durations := map[string]time.Duration{}
	var wg sync.WaitGroup
	for _, c := range Registry {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[c.ID])
			for _, d := range c.Requires {
				<-done[d]
			}
			for _, d := range c.RequiresOnWritable {
				<-done[d]
			}
			for _, d := range c.After {
				<-done[d]
			}
			start := time.Now()
			res := r.decide(ctx, c)
			r.mu.Lock()
			r.results[c.ID] = res
			durations[c.ID] = time.Since(start)
			r.mu.Unlock()
		}()
	}
	wg.Wait()
	if s, ok := output[stagedUpload](r, multipartUpload); ok && s.mine {
		s.probe.finish(report.Skip, "it did not finish") // targets waiting on it go on
	}
	// After a timeout or a signal the verdict is due within a second: cleanup gets that long.
	budget, cut := 10*time.Second, ctx.Err() != nil
	if cut {
		budget = 900 * time.Millisecond
	}
	out.Leftovers = r.cleanup(budget, cut)
	if conn, ok := output[connection](r, Credentials); ok {
		out.Requests = conn.net.Requests()
		conn.net.Close()
		if conn.store != nil {
			out.Endpoint = conn.store.Endpoint().String()
		}
	}
	if out.Endpoint == "" && r.loc.Endpoint != nil {
		out.Endpoint = r.loc.Endpoint.String()
	}
	out.RecoveryWindow = r.results[WALArchive].Window
	for _, c := range Registry {
		if c.Internal {
			continue
		}
		res := r.results[c.ID]
		out.Checks = append(out.Checks, report.Check{ID: c.ID, Status: res.Status, Message: res.Message, Remediation: res.Remediation, DurationMs: durations[c.ID].Milliseconds()})
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
	requires := c.Requires
	if r.writable() {
		requires = append(append([]string(nil), requires...), c.RequiresOnWritable...)
	}
	for _, d := range requires {
		r.mu.Lock()
		dep := r.results[d]
		r.mu.Unlock()
		if dep.Status != report.Pass && dep.Status != report.Warn && !dep.Proceed {
			return skip("skipped: %s did not pass", d)
		}
		if dep.Blocks {
			return skip("skipped: %s", dep.Message)
		}
	}
	if why := r.t.ConfigOnly(); why != "" && c.ID != Config {
		return skip("%s", why)
	}
	if c.Writes {
		if r.t.ReadOnly() {
			return skip("skipped: a %s is read-only, never written", r.t.Role)
		}
		if r.opts.ReadOnly {
			return skip("skipped: --read-only")
		}
	}
	if r.opts.Offline && c.ID != Config && c.ID != Credentials {
		return skip("skipped: --offline")
	}
	if err := ctx.Err(); err != nil {
		return skip("skipped: %s", stopReason(ctx))
	}
	if r.opts.Logf != nil {
		r.opts.Logf("%s: %s: start", r.t.ID, c.ID)
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

// settle waits d, or less when ctx ends first (leaving 100 ms of it).
func settle(ctx context.Context, d time.Duration) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl)-100*time.Millisecond < d {
		d = time.Until(dl) - 100*time.Millisecond
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// cleanup deletes every probe object that may still exist, within budget (the run's context may be
// cancelled already). Keys that could not be deleted are returned. After a run cut short (cut),
// a request abandoned in flight may still land on the store: each key is looked up once more a
// moment later.
func (r *Run) cleanup(budget time.Duration, cut bool) []string {
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
	store := r.store()
	if (len(keys) == 0 && len(uploads) == 0) || store == nil {
		return nil
	}
	// Probe objects and unfinished uploads are given up concurrently: both within the budget.
	var (
		left   []string
		leftMu sync.Mutex
		wg     sync.WaitGroup
	)
	name := func(k string) {
		leftMu.Lock()
		left = append(left, k)
		leftMu.Unlock()
	}
	deadline := time.Now().Add(budget)
	for k, u := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			if err := u.Abort(ctx); err != nil {
				if c, ok := u.(interface{ Confirmed() bool }); ok && !c.Confirmed() {
					name("possibly an incomplete multipart upload of " + k + " (its creation was not confirmed)")
				} else {
					name("incomplete multipart upload of " + k)
				}
				return
			}
			r.trackUpload(k, nil)
		}()
	}
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			// A request cut short (a write, or a multipart completion) may still land after the
			// delete: the key is looked up once more, and deleted again when it is back.
			gone := false
			for attempt := 0; attempt < 2 && !gone; attempt++ {
				err := store.Delete(ctx, k)
				if err != nil && providers.KindOf(err) != providers.KindNotFound {
					break
				}
				if cut && attempt == 0 {
					settle(ctx, 300*time.Millisecond)
				}
				exists, xerr := store.Exists(ctx, k)
				gone = xerr == nil && !exists
			}
			if !gone {
				// named unless it is known not to be there (the write may never have landed)
				if exists, xerr := store.Exists(ctx, k); xerr != nil || exists {
					name(k)
					return
				}
			}
			r.track(k, false)
		}()
	}
	wg.Wait()
	sort.Strings(left)
	return left
}
