package checks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// ProbePrefix starts the name of every object cnpg-preflight writes. Probe objects live directly
// under <prefix>/<serverName>/, never under base/ or wals/.
const ProbePrefix = "cnpg-preflight-probe-"

// errResult turns a store error into a failing result with a remediation.
func errResult(err error, fallbackFix string) Result {
	res := Result{Status: report.Fail, Message: err.Error(), Remediation: fallbackFix}
	if e, ok := err.(*providers.Error); ok && e.Fix != "" {
		res.Remediation = e.Fix
	}
	return res
}

func runCredentials(ctx context.Context, r *Run) Result {
	ca, fs := r.Driver.CA(r.PT)
	if hasFail(fs) {
		return fromFindings(fs, "")
	}
	n, err := providers.NewNet(ca, r.Opts.Logf)
	if err != nil {
		return Result{Status: report.Fail, Message: r.T.Field + ".endpointCA: " + err.Error()}
	}
	r.Net = n
	store, identity, pfs := r.Driver.Connect(ctx, r.PT, r.Loc, n)
	fs = append(fs, pfs...)
	if r.Opts.Offline && !hasFail(fs) {
		msg := "Secrets resolved (no identity or network lookup: --offline)"
		if identity != "" {
			msg = "resolved " + identity + " (--offline)"
		}
		return fromFindings(fs, msg)
	}
	if store == nil || hasFail(fs) {
		return fromFindings(fs, "")
	}
	r.Store = store
	msg := "resolved " + identity
	if ca != nil {
		msg += fmt.Sprintf("; endpointCA bundle added to the trusted roots (%s)", r.T.Conf.EndpointCA.Name)
	}
	return fromFindings(fs, msg)
}

func runEndpoint(ctx context.Context, r *Run) Result {
	rep, err := r.Net.Probe(ctx, r.Store.Endpoint())
	if err != nil {
		return errResult(err, "check that the endpoint is reachable from where the backup client runs")
	}
	return pass("%s", rep)
}

func runBucket(ctx context.Context, r *Run) Result {
	if err := r.Store.CheckBucket(ctx); err != nil {
		res := errResult(err, "")
		if providers.KindOf(err) == providers.KindNotFound && !r.T.ReadOnly() {
			// barman-cloud creates a missing bucket on first use when the identity may
			// (CreateBucket); cnpg-preflight never creates one, so nothing else can be probed.
			res.Status, res.Blocks = report.Warn, true
			res.Message = fmt.Sprintf("%s: %q does not exist yet; barman-cloud will try to create it on first use, and nothing else could be checked", err.Error(), r.Loc.Bucket)
		}
		return res
	}
	return pass("%q is reachable", r.Loc.Bucket)
}

func runList(ctx context.Context, r *Run) Result {
	base := r.Loc.Base()
	l, err := r.Store.List(ctx, base, "/", 1000)
	if err != nil {
		return errResult(err, "")
	}
	var names []string
	for _, p := range l.Prefixes {
		names = append(names, strings.TrimPrefix(p, base))
	}
	objs := 0
	for _, o := range l.Keys {
		if !strings.HasPrefix(strings.TrimPrefix(o.Key, base), ProbePrefix) {
			objs++
		}
	}
	msg := fmt.Sprintf("listed %s: %d folder(s)", base, len(l.Prefixes))
	if len(names) > 0 {
		msg += " (" + strings.Join(names, ", ") + ")"
	}
	more := ""
	if l.Truncated {
		more = "+"
	}
	return pass("%s and %d%s object(s)", msg, objs, more)
}

func newProbe(r *Run) {
	var b [6]byte
	rand.Read(b[:])
	stamp := r.Opts.Now().UTC().Format("20060102T150405Z")
	r.ProbeKey = r.Loc.Base() + ProbePrefix + stamp + "-" + hex.EncodeToString(b[:])
	r.ProbeData = []byte(fmt.Sprintf("cnpg-preflight probe object, safe to delete; written %s; %x\n", stamp, b))
}

func putOptions(r *Run) providers.PutOptions {
	o := providers.PutOptions{Tags: r.T.Conf.Tags}
	if w := r.T.Conf.Wal; w != nil && w.Encryption != "" {
		o.Encryption = w.Encryption
	} else if d := r.T.Conf.Data; d != nil {
		o.Encryption = d.Encryption
	}
	return o
}

// uncertain reports whether a failed request may still have taken effect on the server.
func uncertain(err error) bool {
	switch providers.KindOf(err) {
	case providers.KindTimeout, providers.KindCanceled, providers.KindNetwork, providers.KindOther, providers.KindThrottled:
		return true
	}
	return false
}

func runWrite(ctx context.Context, r *Run) Result {
	newProbe(r)
	r.track(r.ProbeKey, true)
	err := r.Store.Put(ctx, r.ProbeKey, r.ProbeData, putOptions(r))
	if err != nil {
		if !uncertain(err) {
			r.track(r.ProbeKey, false)
		}
		return errResult(err, "grant write access under "+r.Loc.Base())
	}
	extra := ""
	if o := putOptions(r); o.Encryption != "" || len(o.Tags) > 0 {
		extra = " with"
		if o.Encryption != "" {
			extra += " server-side encryption " + o.Encryption
		}
		if len(o.Tags) > 0 {
			extra += fmt.Sprintf(" %d tag(s)", len(o.Tags))
		}
	}
	return pass("wrote %s (%d bytes)%s", r.ProbeKey, len(r.ProbeData), extra)
}

func runRead(ctx context.Context, r *Run) Result {
	if !r.T.ReadOnly() {
		if st := r.status(Write); st != report.Pass && st != report.Warn {
			return skip("skipped: write did not pass")
		}
		got, err := r.Store.Get(ctx, r.ProbeKey)
		if err != nil {
			return errResult(err, "grant read access under "+r.Loc.Base()+": restores and WAL fetches need it")
		}
		if !bytes.Equal(got, r.ProbeData) {
			return Result{Status: report.Fail, Message: fmt.Sprintf("read back %d bytes that differ from the %d bytes written", len(got), len(r.ProbeData)),
				Remediation: "the store or a proxy alters object content; check compression or encryption proxies in between"}
		}
		return pass("read back %d bytes, content matches", len(got))
	}
	// A source is read-only: read the smallest existing object under the server's folder.
	l, err := r.Store.List(ctx, r.Loc.Base(), "", 100)
	if err != nil {
		return errResult(err, "")
	}
	if len(l.Keys) == 0 {
		return skip("skipped: nothing under %s to read", r.Loc.Base())
	}
	sort.Slice(l.Keys, func(i, j int) bool { return l.Keys[i].Size < l.Keys[j].Size })
	o := l.Keys[0]
	if o.Size > 16<<20 {
		return skip("skipped: no object smaller than 16 MiB among the first 100 under %s", r.Loc.Base())
	}
	got, err := r.Store.Get(ctx, o.Key)
	if err != nil {
		return errResult(err, "grant read access under "+r.Loc.Base()+": a restore reads every backup and WAL file")
	}
	return pass("read %s (%d bytes)", o.Key, len(got))
}

func runDelete(ctx context.Context, r *Run) Result {
	err := r.Store.Delete(ctx, r.ProbeKey)
	if err != nil {
		return errResult(err, "grant delete access under "+r.Loc.Base()+": the retention policy and barman-cloud-backup-delete need it")
	}
	exists, err := r.Store.Exists(ctx, r.ProbeKey)
	if err != nil {
		return errResult(err, "")
	}
	if exists {
		return Result{Status: report.Fail, Message: "the probe object still exists after a successful delete", Remediation: "check object-lock or retention settings on the bucket"}
	}
	r.track(r.ProbeKey, false)
	return pass("deleted %s and confirmed it is gone", r.ProbeKey)
}

// bigParts holds one read-only buffer per part size, shared by every target.
var bigParts sync.Map // int -> []byte

func bigPart(size int) []byte {
	if b, ok := bigParts.Load(size); ok {
		return b.([]byte)
	}
	line := []byte("cnpg-preflight multipart probe, safe to delete\n")
	b := bytes.Repeat(line, size/len(line)+1)[:size]
	v, _ := bigParts.LoadOrStore(size, b)
	return v.([]byte)
}

// runMultipart uploads the parts while write/read/delete run, then completes (and deletes) the
// object if delete passed, or aborts it: without delete rights a completed object would stay.
func runMultipart(ctx context.Context, r *Run) Result {
	var b [6]byte
	rand.Read(b[:])
	key := r.Loc.Base() + ProbePrefix + r.Opts.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]) + "-multipart"
	parts := [][]byte{bigPart(r.Store.MinPartSize()), []byte("cnpg-preflight multipart probe, safe to delete\n")}
	size := float64(len(parts[0])+len(parts[1])) / (1 << 20)
	const fix = "allow multipart uploads under %s: base backups above 100 MiB use them"
	up, err := r.Store.StartMultipart(ctx, key, parts, putOptions(r))
	if up != nil {
		r.trackUpload(key, up) // cleanup aborts it if this check cannot finish
	}
	if err != nil {
		return errResult(err, fmt.Sprintf(fix, r.Loc.Base()))
	}
	select {
	case <-r.done[Delete]:
	case <-ctx.Done():
		return Result{Status: report.Fail, Message: "multipart upload started; " + stopReason(ctx) + " before it could be finished"}
	}
	if r.status(Delete) != report.Pass {
		if err := up.Abort(ctx); err != nil {
			return errResult(err, fmt.Sprintf(fix, r.Loc.Base()))
		}
		r.trackUpload(key, nil)
		return pass("uploaded %d parts (%.1f MiB) and aborted the upload without completing it (delete did not pass, so a completed object could not be removed)", len(parts), size)
	}
	r.track(key, true)
	if err := up.Complete(ctx); err != nil {
		if !uncertain(err) {
			r.track(key, false)
		}
		return errResult(err, fmt.Sprintf(fix, r.Loc.Base())) // cleanup aborts the upload
	}
	r.trackUpload(key, nil)
	if err := r.Store.Delete(ctx, key); err != nil {
		return errResult(err, "")
	}
	r.track(key, false)
	return pass("uploaded %d parts (%.1f MiB) as one object, then deleted it", len(parts), size)
}

func runWALArchive(ctx context.Context, r *Run) Result {
	if r.T.ReadOnly() {
		return sourceWALs(ctx, r)
	}
	prefix := r.Loc.Base() + "wals/"
	if r.T.SkipEmptyWALCheck() {
		return skip("skipped: the Cluster sets %s: enabled", targets.SkipEmptyWALAnnotation)
	}
	l, err := r.Store.List(ctx, prefix, "", 10000)
	if err != nil {
		return errResult(err, "")
	}
	var wals []string
	for _, o := range l.Keys {
		if name, ok := WALName(o.Key); ok {
			wals = append(wals, name)
		}
	}
	sort.Strings(wals)
	count := fmt.Sprint(len(wals))
	if l.Truncated {
		count = fmt.Sprintf("at least %d", len(wals))
	}
	if r.T.Archiving() {
		// The Cluster already archives here: the archive must not be ahead of its timeline.
		if len(wals) == 0 {
			return Result{Status: report.Warn, Message: fmt.Sprintf("the Cluster's status says it archives WAL, but %s holds none", prefix),
				Remediation: "check the Cluster's ContinuousArchiving condition and the destination it archives to"}
		}
		newest := 0
		for _, w := range wals {
			newest = max(newest, Timeline(w))
		}
		current := r.T.Cluster.Status.TimelineID
		if current > 0 && newest > current {
			return Result{Status: report.Fail,
				Message:     fmt.Sprintf("the archive under %s holds timeline %d, ahead of the Cluster's timeline %d: another cluster writes there", prefix, newest, current),
				Remediation: "give each Cluster its own serverName or destinationPath"}
		}
		return pass("archive in use by this Cluster: %s WAL file(s) under %s, %s – %s, newest timeline %d", count, prefix, wals[0], wals[len(wals)-1], newest)
	}
	if len(wals) == 0 {
		return pass("no WAL under %s: the archive is empty, as a new Cluster needs", prefix)
	}
	return Result{
		Status: report.Fail,
		Message: fmt.Sprintf("WAL archive check failed for server %s: Expected empty archive (%s WAL file(s) under %s, first %s, last %s)",
			r.Loc.ServerName, count, prefix, wals[0], wals[len(wals)-1]),
		Remediation: "give the new Cluster an unused serverName or destinationPath; or, if these WALs are garbage from an old cluster, delete them; set the annotation " +
			targets.SkipEmptyWALAnnotation + ": enabled only if you are sure",
	}
}
