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
	if r.t.BackupID != "" { // spec.bootstrap.recovery.backup: exactly that backup
		return backupByID(ctx, r, r.t.BackupID)
	}
	base := r.loc.Base() + "base/"
	l, folders, infos, err := readCatalog(ctx, r, 0)
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
func readCatalog(ctx context.Context, r *Run, max int) (providers.Listing, []string, []BackupInfo, error) {
	base := r.loc.Base() + "base/"
	l, err := r.store().List(ctx, base, "/", max)
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

// sourceWALs checks a source's WAL archive, listed once: the segments the latest completed backup
// needs, the whole recovery window (from the oldest completed backup, or the oldest one the
// retentionPolicy keeps, to the newest archived segment, across timeline switches), every
// backup's end_wal, the newest WAL and the timelines seen, and the recoveryTarget against the
// window.
func sourceWALs(ctx context.Context, r *Run) Result {
	prefix := r.loc.Base() + "wals/"
	cat, _ := output[catalog](r, Backups)
	backups := cat.backups
	segSize := uint64(16 << 20)
	for _, b := range backups {
		segSize = b.SegSize
	}
	ix, err := indexWALs(ctx, r.store(), prefix, segSize)
	if err != nil {
		return errResult(err, "")
	}
	timelines := map[int]bool{}
	for tli := range ix.segs {
		timelines[int(tli)] = true
	}
	for tli := range ix.history {
		timelines[int(tli)] = true
	}
	if len(ix.segs) == 0 {
		status, why := report.Fail, serverNameNote(r.t)
		if !r.t.NeedsWAL() {
			status, why = report.Warn, notNeeded(r.t, "WAL")
		}
		return Result{Status: status, Message: fmt.Sprintf("no WAL under %s%s", prefix, why),
			Remediation: "check destinationPath and serverName of the source: they must name the archive the source cluster writes"}
	}
	var newest newestWAL
	for tli, segs := range ix.segs {
		name := segmentName(tli, segs[len(segs)-1], segSize)
		if name > newest.name {
			newest = newestWAL{name: name, obj: ix.objs[name]}
		}
	}
	tls := make([]int, 0, len(timelines))
	for tl := range timelines {
		tls = append(tls, tl)
	}
	sort.Ints(tls)
	tlText := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(tls)), ", "), "[]")
	msg := fmt.Sprintf("newest WAL %s, timeline(s) %s", newest.name, tlText)
	if r.t.Role == targets.RoleReplicaSource && !newest.obj.Modified.IsZero() {
		msg += fmt.Sprintf(", archived %s ago", r.opts.Now().Sub(newest.obj.Modified).Round(time.Second))
	}
	msg += fmt.Sprintf(" (%d WAL file(s) listed once)", ix.entries)
	res := Result{Status: report.Pass, Value: walArchive{newest: newest}}
	fail := func(status report.Status, m, fix string) {
		if status == report.Fail || res.Status == report.Pass {
			if res.Status != report.Fail {
				res.Status, res.Remediation = status, fix
			}
		}
		res.Message += m + "; "
	}
	const walFix = "check the source's WAL archiving (archive_command / ContinuousArchiving) and that nothing expires or deletes WAL files early (lifecycle rules, manual clean-ups), then take a new backup"
	if len(backups) > 0 {
		last := backups[len(backups)-1]
		segs, err := Segments(last.BeginWAL, last.EndWAL, last.SegSize, 4096)
		if err != nil {
			return Result{Status: report.Fail, Message: fmt.Sprintf("backup %s: %v", last.ID, err)}
		}
		var missing []string
		for _, s := range segs {
			if _, ok := ix.objs[s]; !ok {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			fail(report.Fail, fmt.Sprintf("the latest completed backup %s needs WAL %s–%s; missing from %s: %s", last.ID, last.BeginWAL, last.EndWAL, prefix, joinNames(missing, 10)),
				"the backup cannot be restored without these segments: "+walFix)
		} else {
			msg = fmt.Sprintf("WAL %s–%s needed by backup %s present (%d segment(s)); %s", last.BeginWAL, last.EndWAL, last.ID, len(segs), msg)
		}
	}
	w, err := recoveryWindow(ctx, r, ix, backups)
	if err != nil {
		return errResult(err, "")
	}
	if w.report.Earliest != nil || w.report.Latest != nil || w.report.FirstHole != nil {
		if w.report.Timelines == nil {
			w.report.Timelines = []int{}
		}
		res.Window = &w.report
	}
	for _, p := range w.problems {
		fail(report.Fail, p, walFix)
	}
	if len(w.missingEndWALs) > 0 {
		status := report.Warn
		if len(backups) > 0 && strings.HasPrefix(w.missingEndWALs[len(w.missingEndWALs)-1], backups[len(backups)-1].ID+" ") && r.t.NeedsBackups() {
			status = report.Fail
		}
		fail(status, fmt.Sprintf("backup(s) whose end_wal was never archived, which cannot be restored: %s", joinNames(w.missingEndWALs, maxNamed)), walFix)
	}
	strict := r.t.NeedsWAL() || r.t.NeedsBackups()
	if h := w.report.FirstHole; h != nil {
		switch {
		case w.reachesNewest && w.start != nil:
			fail(report.Warn, fmt.Sprintf("WAL %s–%s (%d segment(s)) missing: restore points before the end of backup %s cannot be reached past it", h.From, h.To, h.Missing, w.start.ID),
				"older backups cannot be replayed past the hole: "+walFix)
		default:
			status := report.Warn
			if strict {
				status = report.Fail
			}
			fail(status, fmt.Sprintf("WAL %s–%s (%d segment(s)) missing: no backup restores to the newest WAL %s, replay stops at %s", h.From, h.To, h.Missing, newest.name, lsnText(w.holeStartLSN)),
				"the archive cannot be replayed to its end: "+walFix)
		}
	}
	if ix.truncated {
		fail(report.Warn, fmt.Sprintf("the archive holds more than %d WAL files: the window was computed over the first ones listed", ix.entries), "")
	}
	if s := w.report.String(); s != "" && w.report.Latest != nil {
		msg = s + "; " + msg
	}
	res.Message += msg
	if r.t.Role == targets.RoleRecoverySource {
		if f := recoveryTargetProblem(r, backups, timelines, w); f != nil {
			if f.Status == report.Fail || res.Status == report.Pass {
				res.Status, res.Remediation = f.Status, f.Remediation
			}
			res.Message = f.Message + "; " + res.Message
		}
	}
	return res
}

// recoveryTargetProblem judges spec.bootstrap.recovery.recoveryTarget against the window.
func recoveryTargetProblem(r *Run, backups []BackupInfo, timelines map[int]bool, w *window) *Result {
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
	if id := strings.TrimSpace(rt.BackupID); id != "" {
		found := false
		for _, b := range backups {
			found = found || b.ID == id
		}
		if !found {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.backupID %s is not a completed backup of the source", field, id),
				Remediation: "name a completed backup (barman-cloud-backup-list), or leave backupID out"}
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
		if w.holeStartLSN != 0 && w.start != nil && tt.Before(w.start.EndTime) && w.reachesNewest {
			// between the hole and the end of the first backup after it: maybe unreachable
			return &Result{Status: report.Warn, Message: fmt.Sprintf("%s.targetTime %s is before the end of backup %s, the first after the hole at %s: recovery from an older backup stops at the hole if the target lies past it", field, rt.TargetTime, w.start.ID, w.report.FirstHole.From),
				Remediation: "choose a targetTime inside the recovery window"}
		}
		if !w.reachesNewest && !w.latestTime.IsZero() && tt.After(w.latestTime) {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetTime %s is after the end of the recovery window (%s, before the hole at %s): replay stops there", field, rt.TargetTime, w.latestTime.UTC().Format(time.RFC3339), w.report.FirstHole.From),
				Remediation: "choose a targetTime inside the recovery window, or restore the missing WAL"}
		}
		if w.reachesNewest && !w.latestTime.IsZero() && tt.After(w.latestTime) {
			return &Result{Status: report.Warn, Message: fmt.Sprintf("%s.targetTime %s is after the newest archived WAL (%s): recovery stops at the end of the archive", field, rt.TargetTime, w.latestTime.UTC().Format(time.RFC3339))}
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
		if w.holeStartLSN != 0 && lsn >= w.holeStartLSN && (!w.reachesNewest || lsn < w.earliestLSN) {
			return &Result{Status: report.Fail, Message: fmt.Sprintf("%s.targetLSN %s lies past the hole at %s (%s) and before any backup that starts after it: no restore reaches it", field, rt.TargetLSN, w.report.FirstHole.From, lsnText(w.holeStartLSN)),
				Remediation: "choose a targetLSN inside the recovery window, or restore the missing WAL"}
		}
		if w.latestLSN != 0 && lsn > w.latestLSN {
			return &Result{Status: report.Warn, Message: fmt.Sprintf("%s.targetLSN %s is past the newest archived WAL (%s): recovery waits for WAL that is not there yet", field, rt.TargetLSN, lsnText(w.latestLSN))}
		}
	}
	if rt.TargetXID != "" || rt.TargetName != "" {
		return &Result{Status: report.Pass, Message: fmt.Sprintf("%s targetXID/targetName lie in WAL records, which are not read: not judged against the window", field)}
	}
	return nil
}
