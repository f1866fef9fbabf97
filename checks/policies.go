package checks

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// Check IDs of the store's policies and of the overwrite probe (see Registry).
const (
	StorePolicies = "store-policies"
	Overwrite     = "overwrite"
)

// Thresholds of the lifetime warnings.
const (
	// ExpiryWarning: a credential or certificate expiring within it is named.
	ExpiryWarning = 30 * 24 * time.Hour
	// SkewWarning: a server clock this far from ours is named (SigV4 and Azure's shared key
	// refuse requests 15 minutes off).
	SkewWarning = 5 * time.Minute
	// softDeleteNote: soft delete up to this long is the providers' default and only noted.
	softDeleteNote = 7 * 24 * time.Hour
)

// storePolicies is what store-policies hands on (write and multipart read it: a bucket that
// keeps every new object from deletion gets no probe object).
type storePolicies struct{ p providers.Policies }

// retentionPolicy is the target's retention policy as barman-cloud gets it ("" when none): the
// ObjectStore's spec.retentionPolicy for the plugin, spec.backup.retentionPolicy in-tree.
func (r *Run) retentionPolicy() (value, field string) {
	if r.t.Store != nil {
		return r.t.Store.Spec.RetentionPolicy, fmt.Sprintf("ObjectStore %s: spec.retentionPolicy", r.t.Store.Meta.Name)
	}
	if b := r.t.Cluster.Spec.Backup; b != nil && b.BarmanObjectStore == r.t.Conf {
		return b.RetentionPolicy, "spec.backup.retentionPolicy"
	}
	return "", ""
}

// retentionDays is the longest a recovery window of policy (30d, 4w, 3m) can last, in days (a
// month counts 31 days); 0 when the policy does not parse.
func retentionDays(policy string) int {
	if len(policy) < 2 {
		return 0
	}
	n, err := strconv.Atoi(policy[:len(policy)-1])
	if err != nil || n <= 0 {
		return 0
	}
	switch policy[len(policy)-1] {
	case 'd':
		return n
	case 'w':
		return 7 * n
	case 'm':
		return 31 * n
	}
	return 0
}

// runStorePolicies reads the store's policies once per endpoint, bucket and identity (they are
// the bucket's, whatever the folder) and weighs them for this target's folder.
func runStorePolicies(ctx context.Context, r *Run) Result {
	p, err := sharedRead(ctx, r, StorePolicies, r.store().Policies)
	if err != nil {
		return errResult(err, "")
	}
	rp, rpField := r.retentionPolicy()
	fs, notes := judgePolicies(p, r.loc.Base(), rp, rpField, !r.t.ReadOnly())
	msg := "no versioning, lock, hold or lifecycle rule affects " + r.loc.Base()
	if len(notes) > 0 {
		msg = strings.Join(notes, "; ")
	}
	res := fromFindings(fs, msg)
	if res.Status == report.Fail {
		res.Proceed = true // a policy problem blocks no probe by itself
	}
	res.Value = storePolicies{p}
	return res
}

// judgePolicies weighs a store's policies against what barman-cloud does under base with the
// retention policy rp (for a written target; a source is only read). It returns the findings and
// notes (what was read, for the pass message).
func judgePolicies(p providers.Policies, base, rp, rpField string, written bool) (fs []providers.Finding, notes []string) {
	days := retentionDays(rp)
	window := "no retentionPolicy (barman-cloud keeps every backup and WAL)"
	if days > 0 {
		window = fmt.Sprintf("retentionPolicy %s (%s)", rp, rpField)
	}
	for _, u := range p.Unread {
		if u.Permission == "" {
			notes = append(notes, fmt.Sprintf("%s not read: %s", u.Setting, text.Cap(text.Sanitize(u.Msg), 200)))
			continue
		}
		fs = append(fs, providers.Warnf("", "grant "+u.Permission+" to check it (barman-cloud itself does not need it), or check the setting by hand",
			"could not read the %s (%s): needs %s", u.Setting, text.Cap(text.Sanitize(u.Msg), 200), u.Permission))
	}
	wals := base + "wals/"
	var noncurrent bool
	for _, rule := range p.Rules {
		if !rule.Enabled || !rule.Applies(base) {
			continue
		}
		name := "lifecycle rule"
		if rule.ID != "" {
			name += " " + text.Safe(text.Cap(rule.ID, 80))
		}
		scope := "the whole bucket"
		if rule.Prefix != "" {
			scope = fmt.Sprintf("prefix %q", text.Cap(text.Sanitize(rule.Prefix), 200))
		}
		if rule.Filtered {
			scope += " (with tag or size conditions)"
		}
		onWALs := strings.HasPrefix(rule.Prefix, wals) && (rule.ExpireDays > 0 || rule.TransitionClass != "")
		if rule.NoncurrentDays > 0 {
			noncurrent = true
			notes = append(notes, fmt.Sprintf("%s on %s expires noncurrent versions after %d days", name, scope, rule.NoncurrentDays))
		}
		// a rule with tag or size conditions may not match barman's objects: a warning at most
		failf := providers.Failf
		if rule.Filtered {
			failf = providers.Warnf
		}
		switch {
		case onWALs:
			fs = append(fs, failf("", "remove the lifecycle rule on "+wals+": barman-cloud's retention removes WAL files once no kept backup needs them",
				"%s on %s acts on WAL files under %s (%s): barman-cloud deletes a WAL file only when no kept backup needs it, a lifecycle rule deletes or moves it regardless of the backups, which silently breaks point-in-time recovery", name, scope, wals, ruleAction(rule)))
			continue
		case rule.ExpireDays > 0 && (days == 0 || rule.ExpireDays <= days):
			sev := failf
			if !written {
				sev = providers.Warnf
			}
			fs = append(fs, sev("", fmt.Sprintf("remove the expiration for %s, or make it longer than the retention window plus the interval between backups (barman-cloud's retention deletes what it no longer needs)", base),
				"%s on %s expires objects under %s after %d days, while %s: backups and the WAL files a point-in-time recovery needs are deleted behind barman-cloud's back", name, scope, base, rule.ExpireDays, window))
		case rule.ExpireDays > 0:
			fs = append(fs, providers.Warnf("", "keep the expiration longer than the retention window plus the interval between two backups",
				"%s on %s expires objects under %s after %d days, beyond %s: barman-cloud also keeps the newest backup older than the window (and its WAL files) to recover to the window's start; once that backup is older than %d days it is deleted behind barman-cloud's back", name, scope, base, rule.ExpireDays, window, rule.ExpireDays))
		}
		if rule.TransitionClass != "" {
			class := text.Cap(text.Sanitize(rule.TransitionClass), 40)
			if rule.NeedsRestore {
				fs = append(fs, providers.Warnf("", "keep backups and WAL files in a class that reads immediately (a restore from "+class+" needs a manual restore of every object first)",
					"%s on %s moves objects under %s to %s after %d days: objects there must be restored before they can be read, so a recovery from an older backup fails until each of its objects is restored", name, scope, base, class, rule.TransitionDays))
			} else {
				notes = append(notes, fmt.Sprintf("%s on %s moves objects to %s after %d days (readable directly, at that class's retrieval cost)", name, scope, class, rule.TransitionDays))
			}
		}
	}
	switch {
	case p.Versioning == "Enabled" && p.ObjectLock && written:
		fs = append(fs, providers.Warnf("", "expect the storage of deleted backups to stay until their lock ends; add a lifecycle rule expiring noncurrent versions (and expired delete markers)",
			"versioning with Object Lock: barman-cloud's deletes (retention, barman-cloud-backup-delete) only add delete markers; every version stays, billed, until its lock ends and a lifecycle rule expires it"))
	case p.Versioning == "Enabled" && !noncurrent && written:
		fs = append(fs, providers.Warnf("", fmt.Sprintf("add a lifecycle rule expiring noncurrent versions under %s (e.g. after 7 days) and removing expired delete markers", base),
			"versioning is on and no lifecycle rule expires noncurrent versions under %s: every backup and WAL file barman-cloud's retention deletes stays stored (and billed) as a noncurrent version", base))
	case p.Versioning != "":
		notes = append(notes, "versioning "+strings.ToLower(p.Versioning))
	}
	if p.DefaultRetention > 0 {
		n := int(p.DefaultRetention / (24 * time.Hour))
		mode := ""
		if p.LockMode != "" {
			mode = " " + p.LockMode
		}
		switch {
		case p.LocksOverwrites && written:
			fs = append(fs, providers.Failf("", "remove the bucket's retention policy (or use a bucket without one): barman-cloud needs to overwrite backup.info and to delete what retention drops",
				"the bucket retention policy%s keeps every object for %d days from being overwritten or deleted: barman-cloud ≥ 3.19 writes backup.info twice and the second write is refused (the backup fails), and with %s retention's deletes of younger objects fail", mode, n, window))
		case p.LocksOverwrites:
			notes = append(notes, fmt.Sprintf("bucket retention policy%s of %d days", mode, n))
		case written && days > 0 && n > days:
			fs = append(fs, providers.Warnf("", "shorten the default retention to the retention window, or run barman-cloud ≥ 3.17 with barman-cloud-backup-delete --check-object-lock (it needs s3:GetObjectRetention and s3:GetObjectLegalHold) so retention skips locked backups",
				"Object Lock default retention%s of %d days is longer than %s: the versions of backups retention deletes stay locked (and billed) for up to %d days more", mode, n, window, n-days))
		default:
			notes = append(notes, fmt.Sprintf("Object Lock default retention%s of %d days", mode, n))
		}
	} else if p.ObjectLock {
		notes = append(notes, "Object Lock enabled without a default retention")
	}
	if p.EventBasedHold {
		if written {
			fs = append(fs, providers.Failf("", "turn the default event-based hold off: barman-cloud never releases holds",
				"the bucket puts a default event-based hold on every new object: barman-cloud never releases it, so the second write of backup.info (barman-cloud ≥ 3.19) and every delete of retention are refused"))
		} else {
			notes = append(notes, "default event-based hold")
		}
	}
	if p.Immutability || p.LegalHold {
		what := "an immutability policy"
		if p.LegalHold {
			what = "a legal hold"
			if p.Immutability {
				what = "an immutability policy and a legal hold"
			}
		}
		if written {
			fs = append(fs, providers.Failf("", "remove the container's immutability policy and legal hold, or give barman-cloud a container without them",
				"the container has %s: blobs can be created but neither overwritten nor deleted, so barman-cloud ≥ 3.19's second write of backup.info and every delete of retention are refused", what))
		} else {
			notes = append(notes, "the container has "+what)
		}
	}
	if p.SoftDelete > 0 {
		n := int(p.SoftDelete / (24 * time.Hour))
		if p.SoftDelete > softDeleteNote && written {
			fs = append(fs, providers.Warnf("", "shorten soft delete to a few days (7 is the default), or count its cost",
				"soft delete keeps every deleted object for %d days: what barman-cloud's retention deletes stays billed that long", n))
		} else {
			notes = append(notes, fmt.Sprintf("soft delete keeps deleted objects %d days", n))
		}
	}
	return fs, notes
}

func ruleAction(r providers.LifecycleRule) string {
	var a []string
	if r.ExpireDays > 0 {
		a = append(a, fmt.Sprintf("expires them after %d days", r.ExpireDays))
	}
	if r.TransitionClass != "" {
		a = append(a, fmt.Sprintf("moves them to %s after %d days", text.Cap(text.Sanitize(r.TransitionClass), 40), r.TransitionDays))
	}
	return strings.Join(a, ", ")
}

// locked says why no probe object may be written (a bucket that keeps new objects from deletion:
// a probe could not be removed), "" when probes may be written.
func (r *Run) locked() string {
	sp, ok := output[storePolicies](r, StorePolicies)
	if !ok {
		return ""
	}
	p := sp.p
	switch {
	case p.LocksOverwrites && p.DefaultRetention > 0:
		return fmt.Sprintf("the bucket keeps every new object from deletion for %d days (store-policies): a probe object could not be removed", int(p.DefaultRetention/(24*time.Hour)))
	case p.EventBasedHold:
		return "the bucket holds every new object (default event-based hold, store-policies): a probe object could not be removed"
	case p.Immutability || p.LegalHold:
		return "the container keeps blobs from deletion (immutability policy or legal hold, store-policies): a probe object could not be removed"
	}
	return ""
}

// runOverwrite writes the probe key a second time, as barman-cloud ≥ 3.19 writes backup.info
// (once when a backup starts, again when it ends), and reads the new content back.
func runOverwrite(ctx context.Context, r *Run) Result {
	p, _ := output[probeObject](r, Write)
	data := append(bytes.TrimSuffix(append([]byte(nil), p.data...), []byte("\n")), []byte(" (second write)\n")...)
	fix := "allow overwriting objects under " + r.loc.Base() + " (no retention policy, immutability policy, legal hold or event-based hold on the bucket; the write permission, not only create)"
	if err := r.store().Put(ctx, p.key, data, r.drv.PutOptions(r.t.Conf)); err != nil {
		res := errResult(err, fix)
		res.Message += ": the store refuses to overwrite an object; barman-cloud ≥ 3.19 writes backup.info twice (when a backup starts and when it ends), so every backup fails"
		return res
	}
	got, err := r.store().Get(ctx, p.key, int64(len(data))+1)
	if err != nil {
		return errResult(err, "grant read access under "+r.loc.Base())
	}
	if !bytes.Equal(got, data) {
		return Result{Status: report.Fail, Message: "the second write of the probe object was accepted, but reading it back gives other content (the store or a proxy kept the first version)",
			Remediation: fix}
	}
	return pass("wrote %s a second time and read the new content back, as barman-cloud ≥ 3.19 rewrites backup.info when a backup ends", p.key)
}

// certFindings: a server certificate expiring within 30 days.
func certFindings(rep providers.EndpointReport, now time.Time) []providers.Finding {
	if rep.NotAfter.IsZero() || rep.NotAfter.Sub(now) >= ExpiryWarning {
		return nil
	}
	return []providers.Finding{providers.Warnf("", "renew the endpoint's certificate (and update endpointCA if its issuer changes)",
		"the endpoint's certificate expires on %s (in %s): from then on barman-cloud fails with CERTIFICATE_VERIFY_FAILED", rep.NotAfter.UTC().Format(time.RFC3339), roughly(rep.NotAfter.Sub(now)))}
}

// skewFindings: the store's clock more than 5 minutes from ours.
func skewFindings(skew time.Duration) []providers.Finding {
	if skew <= SkewWarning && skew >= -SkewWarning {
		return nil
	}
	dir := "ahead of"
	if skew < 0 {
		dir, skew = "behind", -skew
	}
	return []providers.Finding{providers.Warnf("", "synchronise the clocks (NTP) of the nodes running the database Pods and of the object store",
		"the store's clock (its Date header) is %s %s this machine's: signed requests are refused beyond 15 minutes (SigV4's RequestTimeTooSkewed, Azure's shared key); if the database Pods' nodes are off the same way, barman-cloud fails", roughly(skew), dir)}
}

func roughly(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}
