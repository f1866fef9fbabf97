package targets

import (
	"fmt"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// BackupSourcePrefix starts the Source of a target made from a Backup object
// (spec.bootstrap.recovery.backup.name).
const BackupSourcePrefix = "backup:"

// backupObjectTarget adds the recovery source of a Cluster bootstrapped from a Backup object
// (spec.bootstrap.recovery.backup.name), once the Cluster does not exist yet: CNPG restores
// exactly that backup ID from the destination recorded in the Backup's status (in-tree method),
// with the credentials recorded there.
func backupObjectTarget(set *manifest.Set, c *manifest.Cluster, add addFunc) {
	b := c.Spec.Bootstrap
	if b == nil || b.Recovery == nil || b.Recovery.Backup == nil || b.Recovery.Backup.Name == "" {
		return
	}
	if existing, _ := Existing(c); existing {
		return
	}
	const field = "spec.bootstrap.recovery.backup.name"
	name := b.Recovery.Backup.Name
	ns := c.Meta.Namespace
	bk := set.Backup(ns, name)
	if bk == nil && !strings.HasPrefix(c.Origin.File, manifest.LivePrefix) && set.Problems["Backup "+ns+"/"+name] == "" {
		return // files without the Backup object: nothing to read the destination from
	}
	if bk == nil {
		t := add(RoleRecoverySource, BackupSourcePrefix+name, field, nil, "")
		msg := fmt.Sprintf("Backup %s/%s not found", ns, text.Safe(name))
		if p := set.Problems["Backup "+ns+"/"+name]; p != "" {
			msg = p
		}
		t.Findings = append(t.Findings, providers.Failf(field, "name a Backup of the Cluster's namespace (kubectl get backups -n "+ns+")", "%s: CNPG cannot bootstrap the Cluster from it", msg))
		return
	}
	st := bk.Status
	where := "Backup " + name + ": status"
	switch {
	case bk.Spec.BackupMethod() == "volumeSnapshot":
		return // restored from volume snapshots, not from an object store
	case bk.Spec.BackupMethod() == "plugin":
		t := add(RoleRecoverySource, BackupSourcePrefix+name, field, nil, "")
		t.Findings = append(t.Findings, providers.Warnf(field, "recover through spec.bootstrap.recovery.source naming an external cluster with the plugin (barmanObjectName, serverName) and, for this backup, recoveryTarget.backupID",
			"Backup %s was taken through a plugin: the Barman Cloud plugin restores from the external cluster named by spec.bootstrap.recovery.source (it reads no destination from the Backup object), so there is nothing here cnpg-preflight can probe", text.Safe(name)))
		return
	case st == nil || st.DestinationPath == "":
		t := add(RoleRecoverySource, BackupSourcePrefix+name, field, nil, "")
		t.Findings = append(t.Findings, providers.Failf(field, "wait for the Backup to complete, or name a completed one",
			"Backup %s records no destination (status.destinationPath): it did not complete, and CNPG restores only a completed backup", text.Safe(name)))
		return
	}
	conf := &manifest.BarmanObjectStore{DestinationPath: st.DestinationPath, EndpointURL: st.EndpointURL, EndpointCA: st.EndpointCA, ServerName: st.ServerName,
		S3Credentials: st.S3Credentials, AzureCredentials: st.AzureCredentials, GoogleCredentials: st.GoogleCredentials}
	t := add(RoleRecoverySource, BackupSourcePrefix+name, where, conf, nameOr(st.ServerName, bk.Spec.Cluster.Name))
	t.BackupID = st.BackupID
	if !strings.EqualFold(st.Phase, "completed") {
		t.Findings = append(t.Findings, providers.Failf(where+".phase", "name a completed Backup", "Backup %s is %q, not completed: CNPG restores only a completed backup", text.Safe(name), text.Safe(st.Phase)))
	}
	if st.BackupID == "" {
		t.Findings = append(t.Findings, providers.Failf(where+".backupId", "name a completed Backup", "Backup %s records no backupId", text.Safe(name)))
	}
}

// methodFindings: after a migration to the plugin, ScheduledBackups and Backups that still use
// method barmanObjectStore fail (there is no spec.backup.barmanObjectStore any more); before it,
// those using the plugin fail the same way. Backups that finished are history: not counted.
func methodFindings(set *manifest.Set, c *manifest.Cluster, inTree bool) []providers.Finding {
	plugin := false
	for _, p := range c.Spec.Plugins {
		plugin = plugin || p.Name == manifest.PluginName && p.IsEnabled()
	}
	if inTree == plugin { // neither, or both (a migration in progress: either method works)
		return nil
	}
	var fs []providers.Finding
	check := func(kind, name string, spec manifest.BackupSpec) {
		m := spec.BackupMethod()
		switch {
		case plugin && m == "barmanObjectStore":
			fs = append(fs, providers.Warnf(kind+" "+name+": spec.method", "set method: plugin with pluginConfiguration.name: "+manifest.PluginName,
				"%s %s uses method barmanObjectStore, but the Cluster backs up through the Barman Cloud plugin (no spec.backup.barmanObjectStore): its backups fail", kind, text.Safe(name)))
		case inTree && m == "plugin" && spec.PluginConfiguration != nil && spec.PluginConfiguration.Name == manifest.PluginName:
			fs = append(fs, providers.Warnf(kind+" "+name+": spec.method", "set method: barmanObjectStore (or finish the migration: wire the plugin in spec.plugins)",
				"%s %s uses the Barman Cloud plugin, but the Cluster has no enabled plugin entry for it: its backups fail", kind, text.Safe(name)))
		}
	}
	for _, sb := range set.ScheduledBackups {
		if sb.Meta.Namespace == c.Meta.Namespace && sb.Spec.Cluster.Name == c.Meta.Name {
			check("ScheduledBackup", sb.Meta.Name, sb.Spec)
		}
	}
	for _, b := range set.Backups {
		if b.Meta.Namespace != c.Meta.Namespace || b.Spec.Cluster.Name != c.Meta.Name {
			continue
		}
		if b.Status != nil && (strings.EqualFold(b.Status.Phase, "completed") || strings.EqualFold(b.Status.Phase, "failed")) {
			continue
		}
		check("Backup", b.Meta.Name, b.Spec)
	}
	return fs
}
