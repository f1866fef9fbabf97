package checks

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// newestWAL is the newest WAL segment of an archive (highest timeline, then segment).
type newestWAL struct {
	name string // e.g. 000000020000000000000005
	obj  providers.Object
}

// sysListMax bounds system-id's own listings (base/ of a backup target, the top of wals/ and a
// hash folder, which holds at most 256 segments of 16 MiB): a page or two each.
const sysListMax = 1000

// findNewestWAL lists the top of wals/ and the last hash folders (a few requests whatever the
// archive's size). The zero value when the archive holds no segment.
func findNewestWAL(ctx context.Context, r *Run) (newestWAL, error) {
	prefix := r.loc.Base() + "wals/"
	top, err := r.store().List(ctx, prefix, "/", sysListMax)
	if err != nil {
		return newestWAL{}, err
	}
	dirs := hashDirs(prefix, top.Prefixes)
	for i := len(dirs) - 1; i >= 0 && i >= len(dirs)-3; i-- {
		l, err := r.store().List(ctx, prefix+dirs[i]+"/", "", sysListMax)
		if err != nil {
			return newestWAL{}, err
		}
		var n newestWAL
		for _, o := range l.Keys {
			if name, ok := WALName(o.Key); ok && walSegRE.MatchString(name) && name > n.name {
				n = newestWAL{name: name, obj: o}
			}
		}
		if n.name != "" {
			return n, nil
		}
	}
	return newestWAL{}, nil
}

// hashDirs returns the sorted names of barman's WAL hash folders (16 hex digits) among prefixes.
func hashDirs(prefix string, prefixes []string) []string {
	var dirs []string
	for _, p := range prefixes {
		d := strings.TrimSuffix(strings.TrimPrefix(p, prefix), "/")
		if len(d) == 16 && walSegRE.MatchString(d+"00000000") {
			dirs = append(dirs, strings.ToUpper(d))
		}
	}
	sort.Strings(dirs)
	return dirs
}

// runSystemID reads whose archive this is: the system identifier in backup.info (systemid) and in
// the newest WAL segment's first page header (xlp_sysid). A backup target of a running Cluster
// (status.systemID) fails when either belongs to another system: another cluster writes there. A
// source reports its identifier and fails when its backups and WAL disagree.
func runSystemID(ctx context.Context, r *Run) Result {
	var backups []BackupInfo
	if r.t.ReadOnly() {
		cat, _ := output[catalog](r, Backups)
		backups = cat.backups
	} else if f, ok := output[serverFolder](r, List); !ok || f.has("base/") {
		_, _, infos, err := readCatalog(ctx, r, sysListMax)
		if err != nil {
			return errResult(err, "")
		}
		for _, b := range infos {
			if b.Problem == "" {
				backups = append(backups, b)
			}
		}
	}
	var newest newestWAL
	if w, ok := output[walArchive](r, WALArchive); ok && w.newest.name != "" {
		newest = w.newest
	} else {
		var err error
		if newest, err = findNewestWAL(ctx, r); err != nil {
			return errResult(err, "")
		}
	}
	var hdr WALHeader
	walID := ""
	if newest.name != "" {
		h, err := ReadWALHeader(ctx, r.store(), newest.obj.Key)
		if err != nil {
			return Result{Status: report.Warn, Message: fmt.Sprintf("cannot read the system identifier of the newest WAL %s: %v", newest.name, err),
				Remediation: "a WAL segment that cannot be read cannot be restored either: check the object and the client that archived it"}
		}
		hdr, walID = h, strconv.FormatUint(h.SystemID, 10)
	}
	// system identifier → the backups of it
	bySys := map[string][]string{}
	var ids []string
	for _, b := range backups {
		if b.SystemID == "" {
			continue
		}
		if bySys[b.SystemID] == nil {
			ids = append(ids, b.SystemID)
		}
		bySys[b.SystemID] = append(bySys[b.SystemID], b.ID)
	}
	describe := func(id string) string {
		var parts []string
		if bs := bySys[id]; len(bs) > 0 {
			parts = append(parts, fmt.Sprintf("%d backup(s) (%s)", len(bs), joinNames(bs, 3)))
		}
		if walID == id {
			parts = append(parts, "the newest WAL "+newest.name)
		}
		return strings.Join(parts, " and ")
	}
	if walID != "" && bySys[walID] == nil {
		ids = append(ids, walID)
	}
	read := fmt.Sprintf(" (its page header read from the first %d bytes)", hdr.BytesRead)
	if walID == "" {
		read = ""
	}
	base := r.loc.Base()
	if len(ids) == 0 {
		if r.t.ReadOnly() {
			return pass("no completed backup or WAL segment under %s to read a system identifier from (backups and wal-archive say what that means)", base)
		}
		return pass("no backup or WAL under %s yet: no other system writes there", base)
	}
	var st *string
	if s := r.t.Cluster.Status; s != nil && strings.TrimSpace(s.SystemID) != "" {
		v := strings.TrimSpace(s.SystemID)
		st = &v
	}
	if !r.t.ReadOnly() && st != nil {
		var foreign []string
		for _, id := range ids {
			if id != *st {
				foreign = append(foreign, fmt.Sprintf("%s of system %s", describe(id), id))
			}
		}
		if len(foreign) > 0 {
			return Result{Status: report.Fail,
				Message: fmt.Sprintf("%s holds %s, but this Cluster is system %s (status.systemID): another cluster writes into this archive%s",
					base, strings.Join(foreign, "; "), *st, read),
				Remediation: "give each Cluster its own serverName or destinationPath; a rebuilt Cluster that reuses its predecessor's serverName must archive elsewhere (or the old archive be moved away) — restoring across two systems' WAL fails"}
		}
		return pass("system %s (status.systemID) is the system of %s%s", *st, describe(*st), read)
	}
	if len(ids) > 1 {
		var parts []string
		for _, id := range ids {
			parts = append(parts, fmt.Sprintf("system %s: %s", id, describe(id)))
		}
		status := report.Fail
		fix := "the archive mixes two PostgreSQL systems: find which cluster writes here now (its pg_controldata 'Database system identifier'), and give the other its own serverName or destinationPath; a restore cannot replay one system's WAL on another's backup"
		if !r.t.ReadOnly() {
			status = report.Warn // no live status.systemID to tell which one is this Cluster
			fix += "; check the Cluster live (--cluster) so its status.systemID is compared"
		}
		return Result{Status: status, Message: fmt.Sprintf("%s holds backups and WAL of %d systems: %s%s", base, len(ids), strings.Join(parts, "; "), read), Remediation: fix}
	}
	who := "source"
	if !r.t.ReadOnly() {
		who = "archive"
	}
	if r.t.Role == targets.RoleBackup {
		return pass("%s of system %s: %s%s (no status.systemID to compare with: check the Cluster live with --cluster)", who, ids[0], describe(ids[0]), read)
	}
	return pass("%s of system %s: %s%s", who, ids[0], describe(ids[0]), read)
}

// names joins at most n names, and says how many more there are.
func joinNames(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}
