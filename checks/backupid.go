package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// backupByID checks the one backup a recovery from a Backup object restores (the Backup's
// status.backupId): barman-cloud-restore is given that ID, so no other backup can stand in.
func backupByID(ctx context.Context, r *Run, id string) Result {
	base := r.loc.Base() + "base/"
	data, err := r.store().Get(ctx, base+id+"/backup.info", backupInfoLimit)
	switch {
	case providers.KindOf(err) == providers.KindNotFound:
		return Result{Status: report.Fail, Message: fmt.Sprintf("backup %s (the Backup object's status.backupId) is not in %s: no %s%s/backup.info", id, base, base, id),
			Remediation: "the backup was deleted (retention?) or the Backup's destination is not where it was taken: name another completed Backup", Value: catalog{}}
	case err != nil:
		return errResult(err, "")
	}
	b := ParseBackupInfo(id, data)
	if b.Problem != "" {
		return Result{Status: report.Fail, Message: fmt.Sprintf("backup %s (the Backup object's status.backupId): %s", id, b.Problem),
			Remediation: "name a completed Backup", Value: catalog{}}
	}
	res := pass("backup %s (the Backup object's status.backupId) is complete: %s → %s, WAL %s–%s, timeline %d", id,
		b.BeginTime.UTC().Format(time.RFC3339), b.EndTime.UTC().Format(time.RFC3339), b.BeginWAL, b.EndWAL, b.Timeline)
	res.Value = catalog{[]BackupInfo{b}}
	return res
}
