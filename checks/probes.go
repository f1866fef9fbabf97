package checks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
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
	var e *providers.Error
	if errors.As(err, &e) && e.Fix != "" {
		res.Remediation = e.Fix
	}
	return res
}

func runCredentials(ctx context.Context, r *Run) Result {
	fs := r.pt.LoadEnv(ctx) // the backup client's environment: spec.env, envFrom, the sidecar's env
	ca, cfs := r.drv.CA(ctx, r.pt)
	if fs = append(fs, cfs...); hasFail(fs) {
		return fromFindings(fs, "")
	}
	n, err := providers.NewNet(ca, providers.NetOptions{Logf: r.opts.Logf, Resolver: r.opts.Resolver, Trust: r.drv.Info().TLS, Env: r.pt.Env, Proxy: r.drv.Info().Proxy})
	if err != nil {
		return Result{Status: report.Fail, Message: r.t.Field + ".endpointCA: " + err.Error()}
	}
	store, identity, pfs := r.drv.Connect(ctx, r.pt, r.loc, n)
	fs = append(fs, pfs...)
	if r.opts.Offline && !hasFail(fs) {
		n.Close()
		msg := "Secrets resolved (no identity or network lookup: --offline)"
		if identity != "" {
			msg = "resolved " + identity + " (--offline)"
		}
		return fromFindings(fs, msg)
	}
	if store == nil || hasFail(fs) {
		res := fromFindings(fs, "")
		res.Value = connection{net: n} // its requests still count
		return res
	}
	msg := "resolved " + identity
	if ca != nil {
		msg += fmt.Sprintf("; endpointCA bundle from Secret %s: the only certificates the backup client trusts", r.t.Conf.EndpointCA.Name)
	}
	res := fromFindings(fs, msg)
	res.Value = connection{store: store, net: n}
	return res
}

func runEndpoint(ctx context.Context, r *Run) Result {
	conn, _ := output[connection](r, Credentials)
	rep, err := conn.net.Probe(ctx, conn.store.Endpoint())
	if err != nil {
		return errResult(err, "check that the endpoint is reachable from where the backup client runs")
	}
	lf := certFindings(rep, r.opts.Now())
	if len(rep.Notes) > 0 {
		res := Result{Status: report.Warn, Message: rep.String() + "; " + strings.Join(rep.Notes, "; "),
			Remediation: "put the self-signed root CA of the endpoint's chain in the endpointCA bundle"}
		for _, f := range lf {
			res.Message += "; " + f.Msg
			res.Remediation += "; " + f.Fix
		}
		return res
	}
	return fromFindings(lf, rep.String())
}

func runBucket(ctx context.Context, r *Run) Result {
	res := bucketResult(ctx, r)
	// the store's first answers carry its clock (Date): SigV4 and Azure's shared key refuse
	// requests 15 minutes off
	if conn, ok := output[connection](r, Credentials); ok {
		if skew, ok := conn.net.ClockSkew(); ok {
			for _, f := range skewFindings(skew) {
				if res.Status == report.Pass {
					res.Status = report.Warn
				}
				res.Message += "; " + f.Msg
				if res.Remediation != "" {
					res.Remediation += "; "
				}
				res.Remediation += f.Fix
			}
		}
	}
	return res
}

func bucketResult(ctx context.Context, r *Run) Result {
	if err := r.store().CheckBucket(ctx); err != nil {
		var nt *providers.Notice
		if errors.As(err, &nt) {
			return Result{Status: report.Warn, Message: fmt.Sprintf("%q is reachable; %s", r.loc.Bucket, nt.Msg), Remediation: nt.Fix}
		}
		res := errResult(err, "")
		if providers.KindOf(err) == providers.KindNotFound && !r.t.ReadOnly() {
			// barman-cloud creates a missing bucket on first use when the identity may
			// (CreateBucket); cnpg-preflight never creates one, so nothing else can be probed.
			res.Status, res.Blocks = report.Warn, true
			res.Message = fmt.Sprintf("%s: %q does not exist yet; barman-cloud will try to create it on first use, and nothing else could be checked", err.Error(), r.loc.Bucket)
		}
		return res
	}
	return pass("%q is reachable", r.loc.Bucket)
}

func runList(ctx context.Context, r *Run) Result {
	base := r.loc.Base()
	l, err := r.store().List(ctx, base, "/", 1000)
	if err != nil {
		return errResult(err, "")
	}
	var names, foreign []string
	for _, p := range l.Prefixes {
		name := strings.TrimPrefix(p, base)
		names = append(names, name)
		if name != "base/" && name != "wals/" {
			foreign = append(foreign, text.Safe(name))
		}
	}
	objs := 0
	for _, o := range l.Keys {
		name := strings.TrimPrefix(o.Key, base)
		if !strings.HasPrefix(name, ProbePrefix) {
			objs++
			foreign = append(foreign, text.Safe(name))
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
	msg = fmt.Sprintf("%s and %d%s object(s)", msg, objs, more)
	// The destination path itself: other servers' folders are expected there; base/ and wals/
	// directly under it mean the destinationPath names a server's folder. Listed once per store
	// and path: a fleet of n servers sharing a destinationPath would otherwise list n folders n times.
	res := Result{Status: report.Pass}
	parent := r.loc.Base()[:len(base)-len(r.loc.ServerName)-1]
	pl, err := sharedRead(ctx, r, "list\x00"+parent, func(ctx context.Context) (providers.Listing, error) {
		return r.store().List(ctx, parent, "/", 1000)
	})
	if err == nil {
		var servers []string
		asServer := false
		for _, p := range pl.Prefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(p, parent), "/")
			switch name {
			case r.loc.ServerName:
			case "base", "wals":
				asServer = true
			default:
				servers = append(servers, text.Safe(name))
			}
		}
		if len(servers) > 0 {
			more := ""
			if pl.Truncated {
				more = " (first page)"
			}
			msg += fmt.Sprintf("; the destination path %s also holds %d other folder(s)%s, other servers' archives: %s — barman-cloud keeps each serverName apart, so sharing a destinationPath is fine as long as no other cluster uses serverName %q",
				displayPrefix(parent), len(servers), more, joinNames(servers, maxNamed), r.loc.ServerName)
		}
		if asServer {
			res.Status = report.Warn
			res.Remediation = "set destinationPath to the folder that holds the servers' folders (one level up), and serverName to the server's folder name"
			msg += fmt.Sprintf("; the destination path %s itself holds base/ and wals/, as a server's folder does: barman-cloud adds the serverName, so this Cluster archives under %s, not into that archive", displayPrefix(parent), base)
		}
	}
	if len(foreign) > 0 {
		res.Status = report.Warn
		if res.Remediation == "" {
			res.Remediation = "barman-cloud writes only base/ and wals/ under a server's folder: find out who writes the other entries (another tool, a wrongly set serverName or destinationPath) and move them away"
		}
		more := ""
		if l.Truncated {
			more = "at least "
		}
		msg += fmt.Sprintf("; %s%d foreign object(s) or folder(s) under %s besides base/, wals/ and cnpg-preflight's probes: %s", more, len(foreign), base, joinNames(foreign, maxNamed))
	}
	res.Message = msg
	res.Value = serverFolder{prefixes: names, complete: !l.Truncated}
	return res
}

// serverFolder is what list hands on: the sub-folders of <prefix>/<serverName>/ (complete: the
// listing was not cut short).
type serverFolder struct {
	prefixes []string
	complete bool
}

// has reports whether the folder has sub-folder name ("base/"), true when unknown.
func (f serverFolder) has(name string) bool {
	if !f.complete {
		return true
	}
	for _, p := range f.prefixes {
		if p == name {
			return true
		}
	}
	return false
}

// displayPrefix is a key prefix for a message ("" is the bucket's root).
func displayPrefix(p string) string {
	if p == "" {
		return "(the bucket's root)"
	}
	return p
}

// probeObject is what write hands on: the key it wrote and the content.
type probeObject struct {
	key  string
	data []byte
}

// probeKey is a new probe object name directly under <prefix>/<serverName>/ (suffix may be "").
func probeKey(r *Run, suffix string) (key, stamp string, random []byte) {
	var b [6]byte
	rand.Read(b[:])
	stamp = r.opts.Now().UTC().Format("20060102T150405Z")
	return r.loc.Base() + ProbePrefix + stamp + "-" + hex.EncodeToString(b[:]) + suffix, stamp, b[:]
}

// uncertain reports whether a failed request may still have taken effect on the server: not
// when the server answered 4xx (it refused the request: nothing was written).
func uncertain(err error) bool {
	var e *providers.Error
	if errors.As(err, &e) && e.Status >= 400 && e.Status < 500 {
		return false
	}
	switch providers.KindOf(err) {
	case providers.KindTimeout, providers.KindCanceled, providers.KindNetwork, providers.KindOther, providers.KindThrottled:
		return true
	}
	return false
}

func runWrite(ctx context.Context, r *Run) Result {
	if why := r.locked(); why != "" {
		return skip("skipped: %s", why)
	}
	key, stamp, b := probeKey(r, "")
	p := probeObject{key: key, data: []byte(fmt.Sprintf("cnpg-preflight probe object, safe to delete; written %s; %x\n", stamp, b))}
	r.track(p.key, true)
	opts := r.drv.PutOptions(r.t.Conf)
	err := r.store().Put(ctx, p.key, p.data, opts)
	if err != nil {
		if !uncertain(err) {
			r.track(p.key, false)
		}
		return errResult(err, "grant write access under "+r.loc.Base())
	}
	extra := ""
	if opts.Encryption != "" || len(opts.Tags) > 0 {
		extra = " with"
		if opts.Encryption != "" {
			extra += " server-side encryption " + opts.Encryption
		}
		if len(opts.Tags) > 0 {
			extra += fmt.Sprintf(" %d tag(s)", len(opts.Tags))
		}
	}
	res := pass("wrote %s (%d bytes)%s", p.key, len(p.data), extra)
	res.Value = p
	return res
}

func runRead(ctx context.Context, r *Run) Result {
	if p, ok := output[probeObject](r, Write); ok {
		got, err := r.store().Get(ctx, p.key, int64(len(p.data))+1) // one byte more tells a longer object
		if err != nil {
			return errResult(err, "grant read access under "+r.loc.Base()+": restores and WAL fetches need it")
		}
		if !bytes.Equal(got, p.data) {
			return Result{Status: report.Fail, Message: fmt.Sprintf("read back %d bytes that differ from the %d bytes written", len(got), len(p.data)),
				Remediation: "the store or a proxy alters object content; check compression or encryption proxies in between"}
		}
		return pass("read back %d bytes, content matches", len(got))
	}
	// Nothing was written (a source, or --read-only): read the smallest existing object under
	// the server's folder.
	base := r.loc.Base()
	l, err := r.store().List(ctx, base, "", 100)
	if err != nil {
		return errResult(err, "")
	}
	if len(l.Keys) == 0 {
		return skip("skipped: nothing under %s to read", base)
	}
	sort.Slice(l.Keys, func(i, j int) bool { return l.Keys[i].Size < l.Keys[j].Size })
	o := l.Keys[0]
	got, err := r.store().Get(ctx, o.Key, min(o.Size+1, sourceReadLimit))
	if err != nil {
		return errResult(err, "grant read access under "+base+": a restore reads every backup and WAL file")
	}
	if int64(len(got)) > o.Size {
		return Result{Status: report.Fail, Message: fmt.Sprintf("%s: the store sent more than the %d bytes it lists the object as (lists as %d bytes)", o.Key, o.Size, o.Size),
			Remediation: "the endpoint does not behave like an object store: check that endpointURL points at the store itself, not at a proxy or web server"}
	}
	if int64(len(got)) < o.Size {
		return pass("read the first %d bytes of %s", len(got), o.Key)
	}
	return pass("read %s (%d bytes)", o.Key, len(got))
}

// runDelete deletes the probe with the call barman-cloud's retention uses (DeleteBatch: S3
// DeleteObjects, the Azure Blob Batch API). When the store refuses it, a single delete tells
// whether retention can work at all.
func runDelete(ctx context.Context, r *Run) Result {
	p, _ := output[probeObject](r, Write)
	fix := "grant delete access under " + r.loc.Base() + ": the retention policy and barman-cloud-backup-delete need it"
	res := pass("deleted %s (the bulk delete barman-cloud's retention uses) and confirmed it is gone", p.key)
	if bulk := r.store().DeleteBatch(ctx, []string{p.key}); bulk != nil {
		if err := r.store().Delete(ctx, p.key); err != nil {
			if providers.KindOf(bulk) == providers.KindDenied && providers.KindOf(err) == providers.KindDenied {
				return errResult(bulk, fix)
			}
			res := errResult(bulk, fix)
			res.Message += "; a single delete is refused too: " + err.Error()
			return res
		}
		var pe *providers.Error
		errors.As(bulk, &pe)
		if pe != nil && pe.Fallback != "" {
			res = Result{Status: report.Warn,
				Message:     fmt.Sprintf("the bulk delete barman-cloud's retention uses is refused (%s), a single delete works: %s; older barman-cloud (e.g. 3.13) fails retention (barman-cloud-backup-delete)", bulk.Error(), pe.Fallback),
				Remediation: "run a barman-cloud that falls back (the Barman Cloud plugin's sidecar ships barman ≥ 3.16 in its recent releases), or make the store accept DeleteObjects without Content-MD5"}
		} else {
			return Result{Status: report.Fail,
				Message:     fmt.Sprintf("the bulk delete barman-cloud's retention uses is refused (%s); a single delete works, but no barman-cloud version falls back on this answer, so retention fails", bulk.Error()),
				Remediation: "allow the bulk delete (S3: POST ?delete, DeleteObjects, needs only s3:DeleteObject) on the endpoint and any proxy in front of it"}
		}
	}
	exists, err := r.store().Exists(ctx, p.key)
	if err != nil {
		return errResult(err, "")
	}
	if exists {
		return Result{Status: report.Fail, Message: "the probe object still exists after a successful delete", Remediation: "check object-lock or retention settings on the bucket"}
	}
	r.track(p.key, false)
	return res
}

// sourceReadLimit is what read takes of an existing object: enough to prove read access.
const sourceReadLimit = 64 << 10

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

const multipartFix = "allow multipart uploads under %s: base backups above 100 MiB use them"

// stagedUpload is what the multipart upload step hands on: an upload whose parts are uploaded.
type stagedUpload struct {
	key   string
	up    providers.Upload
	parts int
	mib   float64
	probe *storeProbe // the store's large-part probe
	mine  bool        // this target makes it (its upload carries the large part)
}

// runMultipartUpload uploads the multipart probe's parts (while write, read and delete run). The
// large part (the store's minimum part size, part number 10,000 on S3, unequal parts with --deep)
// is uploaded once per store — endpoint, bucket and identity — by the first target on it; every
// target uploads a small single-part upload under its own prefix (create, upload, complete or
// abort are permissions of the prefix).
func runMultipartUpload(ctx context.Context, r *Run) Result {
	if why := r.locked(); why != "" {
		return skip("skipped: %s", why)
	}
	key, _, _ := probeKey(r, "-multipart")
	probe, mine := r.shared.claim(r.storeKey(), r.t.ID)
	last := []byte("cnpg-preflight multipart probe, safe to delete\n")
	parts := [][]byte{last}
	if mine {
		parts = [][]byte{bigPart(r.store().MinPartSize()), last}
		if r.opts.Deep {
			// barman's parts differ in size with snappy: a store requiring equal non-trailing parts
			// refuses the completion
			parts = [][]byte{bigPart(r.store().MinPartSize()), bigPart(r.store().MinPartSize() + 1), last}
		}
	}
	up, err := r.store().StartMultipart(ctx, key, parts, r.drv.PutOptions(r.t.Conf))
	if up != nil {
		r.trackUpload(key, up) // cleanup aborts it if the multipart check cannot finish
	}
	if err != nil {
		res := errResult(err, fmt.Sprintf(multipartFix, r.loc.Base()))
		if mine {
			probe.finish(report.Fail, res.Message)
		}
		return res
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	res := pass("uploaded the parts of %s", key)
	res.Value = stagedUpload{key: key, up: up, parts: len(parts), mib: float64(size) / (1 << 20), probe: probe, mine: mine}
	return res
}

// runMultipart completes (and deletes) the uploaded object if delete passed, or aborts it: without
// delete rights a completed object would stay. A target that did not make its store's large-part
// probe then reports that probe's verdict.
func runMultipart(ctx context.Context, r *Run) Result {
	s, ok := output[stagedUpload](r, multipartUpload)
	if !ok {
		r.mu.Lock()
		res := r.results[multipartUpload]
		r.mu.Unlock()
		res.Value = nil
		return res // the upload failed or was skipped: its verdict is this check's
	}
	res := finishMultipart(ctx, r, s)
	if s.mine {
		s.probe.finish(res.Status, res.Message)
		return res
	}
	if res.Status == report.Fail {
		return res
	}
	status, msg, ok := s.probe.wait(ctx)
	switch {
	case !ok:
		res.Status = report.Warn
		res.Message += "; the store's large-part probe (made by " + s.probe.by + ") did not finish in time"
	case status == report.Fail:
		return Result{Status: report.Fail, Message: fmt.Sprintf("%s; but the large-part probe of this endpoint, bucket and identity, made once by %s, failed: %s", res.Message, s.probe.by, msg),
			Remediation: fmt.Sprintf(multipartFix, r.loc.Base())}
	default:
		res.Message += fmt.Sprintf("; the large part (%.0f MiB) was probed once for this endpoint, bucket and identity, by %s", float64(r.store().MinPartSize())/(1<<20), s.probe.by)
	}
	return res
}

// finishMultipart completes or aborts a staged upload (see runMultipart).
func finishMultipart(ctx context.Context, r *Run, s stagedUpload) Result {
	if r.status(Delete) != report.Pass && r.status(Delete) != report.Warn {
		if err := s.up.Abort(ctx); err != nil {
			return errResult(err, fmt.Sprintf(multipartFix, r.loc.Base()))
		}
		r.trackUpload(s.key, nil)
		return pass("uploaded %d part(s) (%.1f MiB) and aborted the upload without completing it (delete did not pass, so a completed object could not be removed)", s.parts, s.mib)
	}
	r.track(s.key, true)
	if err := s.up.Complete(ctx); err != nil {
		if !uncertain(err) {
			r.track(s.key, false)
		}
		res := errResult(err, fmt.Sprintf(multipartFix, r.loc.Base())) // cleanup aborts the upload
		if r.opts.Deep && s.parts > 2 {
			res.Message += "; the non-trailing parts differed in size (5 MiB and 5 MiB + 1 byte), as barman-cloud-backup's do with data.compression snappy"
			res.Remediation = "the store requires non-trailing multipart parts of equal size: use data.compression gzip or bzip2 (or none), whose parts are equal, not snappy"
		}
		return res
	}
	r.trackUpload(s.key, nil)
	if err := r.store().Delete(ctx, s.key); err != nil {
		return errResult(err, "")
	}
	r.track(s.key, false)
	res := pass("uploaded %d part(s) (%.1f MiB) as one object, then deleted it", s.parts, s.mib)
	if d, ok := s.up.(interface{ Describe() string }); ok && s.mine {
		res.Message += "; " + d.Describe()
	}
	return res
}

func runWALArchive(ctx context.Context, r *Run) Result {
	if r.t.ReadOnly() {
		return sourceWALs(ctx, r)
	}
	prefix := r.loc.Base() + "wals/"
	if r.t.SkipEmptyWALCheck() {
		return skip("skipped: the Cluster sets %s: enabled", targets.SkipEmptyWALAnnotation)
	}
	l, err := r.store().List(ctx, prefix, "", 10000)
	if err != nil {
		return errResult(err, "")
	}
	res := backupTargetWALs(r, prefix, l)
	// the newest segment, for system-id (when the listing is complete)
	var newest newestWAL
	for _, o := range l.Keys {
		if name, ok := WALName(o.Key); ok && walSegRE.MatchString(name) && strings.ToUpper(name) > newest.name {
			newest = newestWAL{name: strings.ToUpper(name), obj: o}
		}
	}
	if !l.Truncated && newest.name != "" {
		res.Value = walArchive{newest: newest}
	}
	return res
}

// backupTargetWALs applies barman-cloud-check-wal-archive's rule to a backup target's listing.
func backupTargetWALs(r *Run, prefix string, l providers.Listing) Result {
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
	if existing, why := targets.Existing(r.t.Cluster); existing {
		// CNPG checks for an empty archive only on the first WAL after bootstrap: an existing
		// Cluster archives here already. The archive must not be ahead of its timeline.
		if len(wals) == 0 {
			return Result{Status: report.Warn, Message: fmt.Sprintf("%s, but %s holds no WAL", why, prefix),
				Remediation: "check the Cluster's ContinuousArchiving condition and the destination it archives to"}
		}
		newest := 0
		for _, w := range wals {
			newest = max(newest, Timeline(w))
		}
		current := 0
		if st := r.t.Cluster.Status; st != nil {
			current = st.TimelineID
		}
		if current > 0 && newest > current {
			return Result{Status: report.Fail,
				Message:     fmt.Sprintf("the archive under %s holds timeline %d, ahead of the Cluster's timeline %d: another cluster writes there", prefix, newest, current),
				Remediation: "give each Cluster its own serverName or destinationPath"}
		}
		return pass("archive in use by this Cluster (%s; CNPG checks for an empty archive only after bootstrap): %s WAL file(s) under %s, %s – %s, newest timeline %d", why, count, prefix, wals[0], wals[len(wals)-1], newest)
	}
	if len(wals) == 0 {
		return pass("no WAL under %s: the archive is empty, as a new Cluster needs", prefix)
	}
	return Result{
		Status: report.Fail,
		Message: fmt.Sprintf("WAL archive check failed for server %s: Expected empty archive (%s WAL file(s) under %s, first %s, last %s)",
			r.loc.ServerName, count, prefix, wals[0], wals[len(wals)-1]),
		Remediation: "give the new Cluster an unused serverName or destinationPath; or, if these WALs are garbage from an old cluster, delete them; set the annotation " +
			targets.SkipEmptyWALAnnotation + ": enabled only if you are sure; if the Cluster already runs (a promoted replica of a distributed topology, say), check it live (--cluster) so its status is read",
	}
}
