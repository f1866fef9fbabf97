package checks

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// backupInfoLimit bounds a backup.info read (barman's are a few KiB).
const backupInfoLimit = 256 << 10

// A catalog of more backups than readNewest+readOldest is sampled; at most maxNamed problems are
// named in a message.
const (
	readNewest = 24
	readOldest = 8
	maxNamed   = 5
)

// runBackups reads a source's backup catalog the way barman does: every sub-prefix of base/ is a
// backup, described by its backup.info.
func runBackups(ctx context.Context, r *Run) Result {
	if !r.t.ReadOnly() {
		return skip("skipped: applies to recovery and replica sources")
	}
	base := r.loc.Base() + "base/"
	l, folders, infos, err := readCatalog(ctx, r)
	if err != nil {
		return errResult(err, "")
	}
	noneStatus, why := report.Fail, serverNameNote(r.t)
	if !r.t.NeedsBackups() {
		noneStatus, why = report.Warn, notNeeded(r.t, "backup")
	}
	if len(l.Prefixes) == 0 {
		return Result{Status: noneStatus, Message: fmt.Sprintf("no backup under %s%s", base, why),
			Remediation: "check destinationPath and serverName: they must name the folder the source cluster backs up to (its serverName defaults to its own name)"}
	}
	read := infos
	var done, bad []BackupInfo
	for _, b := range infos {
		if b.Problem == "" {
			done = append(done, b)
		} else {
			bad = append(bad, b)
		}
	}
	sort.Slice(done, func(i, j int) bool {
		return done[i].EndTime.Before(done[j].EndTime) || (done[i].EndTime.Equal(done[j].EndTime) && done[i].ID < done[j].ID)
	})
	var unusable []string
	for _, b := range bad {
		if len(unusable) == maxNamed {
			unusable = append(unusable, fmt.Sprintf("and %d more", len(bad)-maxNamed))
			break
		}
		unusable = append(unusable, fmt.Sprintf("%s (%s)", b.ID, b.Problem))
	}
	count := fmt.Sprint(len(folders))
	if len(read) < len(folders) {
		count = fmt.Sprintf("%d (backup.info read for the newest %d and the oldest %d)", len(folders), readNewest, readOldest)
	}
	if l.Truncated {
		count = "more than " + count
	}
	if len(done) == 0 {
		return Result{Status: noneStatus, Message: fmt.Sprintf("%s backup folder(s) under %s, none completed: %s%s", count, base, strings.Join(unusable, ", "), why),
			Remediation: "take a backup on the source cluster and wait for it to complete (status DONE in backup.info)", Value: catalog{}}
	}
	last := done[len(done)-1]
	msg := fmt.Sprintf("%s backup(s), %d completed; latest completed %s: %s → %s, WAL %s–%s, timeline %d",
		count, len(done), last.ID, last.BeginTime.UTC().Format(time.RFC3339), last.EndTime.UTC().Format(time.RFC3339), last.BeginWAL, last.EndWAL, last.Timeline)
	if len(done) > 1 {
		msg += fmt.Sprintf("; oldest completed %s", done[0].ID)
	}
	if len(bad) > 0 {
		return Result{Status: report.Warn, Message: msg + "; not usable: " + strings.Join(unusable, ", "),
			Remediation: "unfinished backups are ignored by a restore; remove them with barman-cloud-backup-delete if they are failed leftovers", Value: catalog{done}}
	}
	res := pass("%s", msg)
	res.Value = catalog{done}
	return res
}

// notNeeded says why a source's missing backups or WAL only warn, and what may explain them.
func notNeeded(t *targets.Target, what string) string {
	return lenientReason(t, what) + serverNameNote(t)
}

// serverNameNote repeats a surprising serverName default next to an empty source folder.
func serverNameNote(t *targets.Target) string {
	if t.ServerNameNote == "" {
		return ""
	}
	return "; note: " + t.ServerNameNote
}

// lenientReason says why a missing backup or WAL only warns for the target's role.
func lenientReason(t *targets.Target, what string) string {
	switch t.Role {
	case targets.RolePeerSource:
		return fmt.Sprintf(" (the Cluster is the primary now: it reads this archive only after a demotion; until then the peer's %s may not exist yet)", what)
	case targets.RoleReplicaSource:
		if existing, how := targets.Existing(t.Cluster); existing {
			return fmt.Sprintf(" (%s: it has its data and only replays WAL from this source)", how)
		}
		return " (the Cluster does not restore a backup from this source: it only replays WAL from it)"
	case targets.RoleRecoverySource:
		return " (the data comes from volume snapshots: only WAL is read from this source)"
	}
	return ""
}

// readCatalog lists <prefix>/<serverName>/base/ the way barman's catalog does (every sub-folder is
// a backup) and reads the backup.info of each (concurrently); a large catalog is sampled: the
// newest and the oldest backups are what a restore and its window depend on. Backup IDs are
// timestamps: sorted, the folders run oldest to newest.
func readCatalog(ctx context.Context, r *Run) (providers.Listing, []string, []BackupInfo, error) {
	base := r.loc.Base() + "base/"
	l, err := r.store().List(ctx, base, "/", 0)
	if err != nil {
		return l, nil, nil, err
	}
	folders := append([]string(nil), l.Prefixes...)
	sort.Strings(folders)
	read := folders
	if len(folders) > readNewest+readOldest {
		read = append(append([]string(nil), folders[:readOldest]...), folders[len(folders)-readNewest:]...)
	}
	infos := make([]BackupInfo, len(read))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, p := range read {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := strings.TrimSuffix(strings.TrimPrefix(p, base), "/")
			data, err := r.store().Get(ctx, p+"backup.info", backupInfoLimit)
			switch {
			case providers.KindOf(err) == providers.KindNotFound:
				infos[i] = BackupInfo{ID: id, Problem: "no backup.info: unfinished or interrupted"}
			case err != nil:
				infos[i] = BackupInfo{ID: id, Problem: "backup.info unreadable: " + err.Error()}
			default:
				infos[i] = ParseBackupInfo(id, data)
			}
		}()
	}
	wg.Wait()
	return l, folders, infos, nil
}

// catalog is what backups hands on: a source's completed backups, oldest first.
type catalog struct{ backups []BackupInfo }

// walArchive is what wal-archive hands on: the newest WAL segment it saw.
type walArchive struct {
	newest newestWAL
}

// sourceWALs checks a source's WAL archive: the segments the latest completed backup needs, the
// newest WAL and the timelines seen. It lists only the hash folders it needs.
func sourceWALs(ctx context.Context, r *Run) Result {
	prefix := r.loc.Base() + "wals/"
	top, err := r.store().List(ctx, prefix, "/", 0)
	if err != nil {
		return errResult(err, "")
	}
	timelines := map[int]bool{}
	for _, o := range top.Keys {
		if name, ok := WALName(o.Key); ok && strings.HasSuffix(name, ".history") {
			timelines[Timeline(name)] = true
		}
	}
	var dirs []string
	for _, p := range top.Prefixes {
		d := strings.TrimSuffix(strings.TrimPrefix(p, prefix), "/")
		if len(d) == 16 && walSegRE.MatchString(d+"00000000") {
			dirs = append(dirs, d)
			timelines[Timeline(d)] = true
		}
	}
	sort.Strings(dirs)
	cat, _ := output[catalog](r, Backups)
	backups := cat.backups
	if len(dirs) == 0 {
		status, why := report.Fail, serverNameNote(r.t)
		if !r.t.NeedsWAL() {
			status, why = report.Warn, notNeeded(r.t, "WAL")
		}
		return Result{Status: status, Message: fmt.Sprintf("no WAL under %s%s", prefix, why),
			Remediation: "check destinationPath and serverName of the source: they must name the archive the source cluster writes"}
	}
	// Contents of the hash folders, listed on demand.
	seen := map[string]map[string]providers.Object{}
	folder := func(d string) (map[string]providers.Object, error) {
		if m, ok := seen[d]; ok {
			return m, nil
		}
		l, err := r.store().List(ctx, prefix+d+"/", "", 0)
		if err != nil {
			return nil, err
		}
		m := map[string]providers.Object{}
		for _, o := range l.Keys {
			if name, ok := WALName(o.Key); ok {
				m[name] = o
			}
		}
		seen[d] = m
		return m, nil
	}
	newestDir, err := folder(dirs[len(dirs)-1])
	if err != nil {
		return errResult(err, "")
	}
	var newest providers.Object
	newestName := ""
	for name, o := range newestDir {
		if walSegRE.MatchString(name) && name > newestName {
			newestName, newest = name, o
		}
	}
	tls := make([]int, 0, len(timelines))
	for tl := range timelines {
		tls = append(tls, tl)
	}
	sort.Ints(tls)
	tlText := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(tls)), ", "), "[]")
	msg := fmt.Sprintf("newest WAL %s, timeline(s) %s", newestName, tlText)
	if r.t.Role == targets.RoleReplicaSource && !newest.Modified.IsZero() {
		msg += fmt.Sprintf(", archived %s ago", r.opts.Now().Sub(newest.Modified).Round(time.Second))
	}
	res := Result{Status: report.Pass, Value: walArchive{newest: newestWAL{name: newestName, obj: newest}}}
	if len(backups) > 0 {
		last := backups[len(backups)-1]
		segs, err := Segments(last.BeginWAL, last.EndWAL, last.SegSize, 4096)
		if err != nil {
			return Result{Status: report.Fail, Message: fmt.Sprintf("backup %s: %v", last.ID, err)}
		}
		var missing []string
		for _, s := range segs {
			m, err := folder(s[:16])
			if err != nil {
				return errResult(err, "")
			}
			if _, ok := m[s]; !ok {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return Result{Status: report.Fail,
				Message:     fmt.Sprintf("the latest completed backup %s needs WAL %s–%s; missing from %s: %s (%s)", last.ID, last.BeginWAL, last.EndWAL, prefix, strings.Join(missing, ", "), msg),
				Remediation: "the backup cannot be restored without these segments: check the source's WAL archiving (archive_command / ContinuousArchiving) and that nothing expires WAL files early (lifecycle rules), then take a new backup"}
		}
		msg = fmt.Sprintf("WAL %s–%s needed by backup %s present (%d segment(s)); %s", last.BeginWAL, last.EndWAL, last.ID, len(segs), msg)
	}
	res.Message = msg
	if r.t.Role == targets.RoleRecoverySource {
		if f := recoveryTargetProblem(r, backups, timelines, newest); f != nil {
			res.Status, res.Message, res.Remediation = f.Status, f.Message+"; "+msg, f.Remediation
		}
	}
	return res
}

// recoveryTargetProblem says when spec.bootstrap.recovery.recoveryTarget cannot be reached.
func recoveryTargetProblem(r *Run, backups []BackupInfo, timelines map[int]bool, newest providers.Object) *Result {
	b := r.t.Cluster.Spec.Bootstrap
	if b == nil || b.Recovery == nil || b.Recovery.RecoveryTarget == nil {
		return nil
	}
	rt := b.Recovery.RecoveryTarget
	const field = "spec.bootstrap.recovery.recoveryTarget"
	if tli := strings.TrimSpace(rt.TargetTLI); tli != "" && tli != "latest" && tli != "current" {
		n, err := strconv.ParseInt(tli, 0, 32)
		if err != nil {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetTLI %q is not a timeline number, latest or current", field, tli)}
		}
		if !timelines[int(n)] {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetTLI %d: the archive holds no WAL or history of timeline %d", field, n, n),
				Remediation: "use a timeline present in the archive, or latest"}
		}
	}
	if len(backups) == 0 {
		return nil
	}
	first := backups[0]
	if rt.TargetTime != "" {
		tt, err := ParseTime(rt.TargetTime)
		if err != nil {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetTime %q: %v", field, rt.TargetTime, err)}
		}
		if tt.Before(first.EndTime) {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetTime %s is before the end of the earliest completed backup %s (%s): no backup can reach it", field, rt.TargetTime, first.ID, first.EndTime.UTC().Format(time.RFC3339)),
				Remediation: "choose a targetTime after the end of a completed backup"}
		}
		if !newest.Modified.IsZero() && tt.After(newest.Modified) {
			return &Result{Status: report.Warn, Message: fmt.Sprintf("%s.targetTime %s is after the newest archived WAL (%s): recovery stops at the end of the archive", field, rt.TargetTime, newest.Modified.UTC().Format(time.RFC3339))}
		}
	}
	if rt.TargetLSN != "" {
		lsn, err := ParseLSN(rt.TargetLSN)
		if err != nil {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetLSN: %v", field, err)}
		}
		if first.EndLSN != 0 && lsn < first.EndLSN {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetLSN %s is before the end of the earliest completed backup %s: no backup can reach it", field, rt.TargetLSN, first.ID),
				Remediation: "choose a targetLSN after the end LSN of a completed backup"}
		}
	}
	return nil
}
