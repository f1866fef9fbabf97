// Package targets turns Clusters (and the ObjectStores they use) into the list of object-store
// targets to check: the backup destination and every external cluster used as a source.
package targets

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Roles of a target. They are part of the JSON output contract: values are only ever added.
const (
	RoleBackup         = "backup"
	RoleRecoverySource = "recovery-source"
	RoleReplicaSource  = "replica-source"
	// RolePeerSource is spec.replica.source while the Cluster is a primary (of a distributed
	// topology, or a replica cluster with enabled: false): it follows that archive only after a
	// demotion, so it is read like a source, but missing backups or WAL only warn.
	RolePeerSource = "peer-source"
	// RoleSelf is the externalClusters entry describing the Cluster itself in a distributed
	// topology (spec.replica.self, or the Cluster's name when spec.replica.primary is set). CNPG
	// never reads it for this Cluster; its peers restore from the location it names. Only its
	// configuration is checked, and that it names the Cluster's own backup destination.
	RoleSelf   = "self"
	RoleSource = "source"
)

// Annotations CNPG reads on a Cluster.
const (
	// SkipEmptyWALAnnotation disables CNPG's empty-archive check when it is exactly "enabled".
	SkipEmptyWALAnnotation = "cnpg.io/skipEmptyWalArchiveCheck"
	// ValidationAnnotation "disabled" turns CNPG's validating webhook off for the Cluster.
	ValidationAnnotation = "cnpg.io/validation"
)

// Target is one object-store configuration a Cluster uses.
type Target struct {
	ID         string // namespace/cluster/role[/source], unique in a run
	Cluster    *manifest.Cluster
	Role       string
	Source     string // external cluster name, for sources
	Field      string // field path of the configuration block
	Conf       *manifest.BarmanObjectStore
	ServerName string
	// ServerNameNote explains a serverName that was defaulted surprisingly (a plugin source
	// without parameters.serverName gets the current Cluster's name), "" otherwise.
	ServerNameNote string
	// Admission: CNPG's webhook validates this block's credentials (spec.backup.barmanObjectStore
	// of a Cluster whose validation is not disabled).
	Admission bool
	Env       map[string]string   // environment the backup client runs with (complete after LoadEnv of its ProviderTarget)
	env       *clientEnv          // how Env is made (spec.env/envFrom, the sidecar's env)
	Findings  []providers.Finding // decoding and wiring problems found while building
	// Notes is what the live Cluster and ObjectStore report (status), shown by the config check.
	Notes  []string
	Lookup providers.SecretLookup
	Store  *manifest.ObjectStore // the plugin's ObjectStore, when the target comes from the plugin
	// BackupID is the one backup a recovery from a Backup object restores (its status.backupId).
	BackupID string
	Driver   providers.Driver // the provider serving Conf's destinationPath (nil: none)
}

// ReadOnly reports whether the target must never be written (sources).
func (t *Target) ReadOnly() bool { return t.Role != RoleBackup }

// ConfigOnly returns why only the config check applies to the target ("" when every check does).
func (t *Target) ConfigOnly() string {
	if t.Role == RoleSelf {
		return "skipped: spec.replica.self describes this Cluster's own archive for its peers; CNPG never reads it for this Cluster, whose archive is probed as its backup target"
	}
	return ""
}

// SkipEmptyWALCheck reports whether the Cluster disables the empty-archive check: CNPG compares
// the annotation with "enabled" exactly.
func (t *Target) SkipEmptyWALCheck() bool {
	return t.Cluster.Meta.Annotations[SkipEmptyWALAnnotation] == "enabled"
}

// NeedsBackups reports whether a source must hold a completed backup: the Cluster restores its
// data from it (a recovery source, unless the data comes from volume snapshots and the source only
// feeds WAL; a replica source that is also the recovery source of a Cluster that does not exist
// yet — a replica bootstrapped by pg_basebackup only needs WAL there).
func (t *Target) NeedsBackups() bool {
	var r *manifest.Recovery
	if b := t.Cluster.Spec.Bootstrap; b != nil {
		r = b.Recovery
	}
	fromBackup := r != nil && r.Source == t.Source && r.VolumeSnapshots == nil
	if t.BackupID != "" || strings.HasPrefix(t.Source, BackupSourcePrefix) {
		return true // spec.bootstrap.recovery.backup: that very backup
	}
	switch t.Role {
	case RoleRecoverySource:
		return fromBackup
	case RoleReplicaSource:
		existing, _ := Existing(t.Cluster)
		return !existing && fromBackup
	}
	return false
}

// NeedsWAL reports whether a source's WAL archive is read now (recovery and replica sources).
func (t *Target) NeedsWAL() bool { return t.Role == RoleRecoverySource || t.Role == RoleReplicaSource }

// Existing reports whether the Cluster already exists and archives, and says how that is known.
// CNPG checks that its archive is empty only on the first WAL after bootstrap; for an existing
// Cluster a non-empty archive is expected. Known from the live status (condition
// ContinuousArchiving=True, firstRecoverabilityPoint, lastSuccessfulBackup) or from the manifest
// alone: a replica bootstrapped neither by recovery nor pg_basebackup (CNPG rejects creating one,
// so it is a demoted primary), or a promotionToken (a replica being promoted).
func Existing(c *manifest.Cluster) (bool, string) {
	if st := c.Status; st != nil {
		for _, cond := range st.Conditions {
			if cond.Type == "ContinuousArchiving" && cond.Status == "True" {
				return true, "the Cluster's status says it archives WAL (ContinuousArchiving)"
			}
		}
		if st.FirstRecoverabilityPoint != "" || st.LastSuccessfulBackup != "" {
			return true, "the Cluster's status records backups"
		}
	}
	b := c.Spec.Bootstrap
	if c.IsReplica() && (b == nil || b.Recovery == nil && b.PgBaseBackup == nil) {
		return true, "the Cluster is a replica bootstrapped without recovery or pg_basebackup, which CNPG only allows for a primary that was demoted"
	}
	if r := c.Spec.Replica; r != nil && r.PromotionToken != "" {
		return true, "spec.replica.promotionToken is set: the Cluster is a replica being promoted"
	}
	return false, ""
}

// ProviderTarget is the view a provider driver gets.
func (t *Target) ProviderTarget() *providers.Target {
	pt := &providers.Target{Conf: t.Conf, Field: t.Field, Namespace: t.Cluster.Meta.Namespace, ServerName: t.ServerName, Env: t.Env, Secret: t.Lookup, Admission: t.Admission}
	if t.env != nil {
		ce := t.env
		pt.EnvResolve = func(ctx context.Context) (map[string]string, []providers.Finding) {
			env, fs := ce.resolve(ctx)
			for k, v := range t.Env { // set by whoever built the target (tests)
				if _, ok := env[k]; !ok {
					env[k] = v
				}
			}
			return env, fs
		}
	}
	return pt
}

// SecretsFromSet returns a lookup reading Secrets of namespace from a manifest Set.
func SecretsFromSet(set *manifest.Set, namespace string) providers.SecretLookup {
	return func(_ context.Context, name, key string) ([]byte, error) {
		s := set.Secret(namespace, name)
		if s == nil {
			return nil, providers.SecretNotFound(namespace, name)
		}
		v, ok := s.Data[key]
		if !ok {
			return nil, providers.SecretKeyMissing(namespace, name, key)
		}
		return v, nil
	}
}

// NoSecrets is a lookup for building targets without reading Secrets.
func NoSecrets(string) providers.SecretLookup {
	return func(context.Context, string, string) ([]byte, error) { return nil, fmt.Errorf("not read") }
}

// Build returns the targets of every Cluster in set, sorted by namespace, name and role.
// lookup builds the Secret lookup for a namespace (from files or a live cluster); reg tells each
// target's provider.
func Build(set *manifest.Set, lookup func(namespace string) providers.SecretLookup, reg *providers.Registry) []*Target {
	return BuildWith(set, lookup, reg, SourcesFromSet(set))
}

// BuildWith is Build with the sources of the backup clients' environments (spec.env, envFrom,
// the sidecar's env: Secrets and ConfigMaps from files or a live cluster, the Pod's own
// environment when running as the Job).
func BuildWith(set *manifest.Set, lookup func(namespace string) providers.SecretLookup, reg *providers.Registry, src EnvSources) []*Target {
	clusters := append([]*manifest.Cluster(nil), set.Clusters...)
	sort.Slice(clusters, func(i, j int) bool {
		a, b := clusters[i].Meta, clusters[j].Meta
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	var out []*Target
	for _, c := range clusters {
		ts := forCluster(set, c, lookup(c.Meta.Namespace), reg)
		for _, t := range ts {
			if t.Conf != nil {
				t.env = envFor(set, c, t.Store != nil, src)
				t.Findings = append(t.Findings, reloadFinding(set, c, t)...)
				notes, fs := statusFindings(c, t)
				t.Notes, t.Findings = append(t.Notes, notes...), append(t.Findings, fs...)
				t.Findings = append(t.Findings, envFindings(c, t)...)
			}
		}
		out = append(out, ts...)
	}
	// IDs are unique: a repeated one (two entries CNPG would reject as duplicates) gets #2, #3 …
	seen := map[string]int{}
	for _, t := range out {
		if n := seen[t.ID]; n > 0 {
			seen[t.ID]++
			t.ID += fmt.Sprintf("#%d", n+1)
			continue
		}
		seen[t.ID] = 1
	}
	return out
}

func forCluster(set *manifest.Set, c *manifest.Cluster, lookup providers.SecretLookup, reg *providers.Registry) []*Target {
	var out []*Target
	webhook := c.Meta.Annotations[ValidationAnnotation] != "disabled"
	add := func(role, source, field string, conf *manifest.BarmanObjectStore, serverName string) *Target {
		t := &Target{Cluster: c, Role: role, Source: source, Field: field, Conf: conf, ServerName: serverName, Lookup: lookup, Env: map[string]string{}}
		t.ID = c.Meta.Namespace + "/" + c.Meta.Name + "/" + role
		if source != "" {
			t.ID += "/" + source
		}
		t.Admission = webhook && field == inTreeBackup
		for _, is := range c.Issues {
			if strings.HasPrefix(is.Path, field+".") {
				msg := is.Msg
				if !strings.HasPrefix(c.Origin.File, manifest.LivePrefix) {
					msg += fmt.Sprintf(" (line %d)", is.Line)
				}
				if strings.Contains(is.Msg, `"endpointURL"`) && conf != nil && conf.EndpointURL == "" {
					msg += "; without endpointURL barman-cloud sends every request to AWS S3"
				}
				t.Findings = append(t.Findings, providers.Failf(is.Path, "fix the field name (names are case-sensitive)", "%s", msg))
			}
		}
		if conf != nil {
			t.Driver = reg.For(conf.DestinationPath)
			t.Findings = append(t.Findings, identityFindings(c, field, conf, reg)...)
		}
		out = append(out, t)
		return t
	}
	spec := c.Spec
	inTree := spec.Backup != nil && spec.Backup.BarmanObjectStore != nil
	if inTree {
		t := add(RoleBackup, "", inTreeBackup, spec.Backup.BarmanObjectStore, nameOr(spec.Backup.BarmanObjectStore.ServerName, c.Meta.Name))
		t.Findings = append(t.Findings, providers.Warnf(inTreeBackup, "move the configuration to an ObjectStore and wire it with spec.plugins (barman-cloud.cloudnative-pg.io)",
			"in-tree barmanObjectStore is deprecated in favour of the Barman Cloud plugin (removed in CNPG 1.31.0)"))
	}
	backupFromPlugin(set, c, add, inTree)
	backupObjectTarget(set, c, add)
	bySource := map[int]*Target{} // externalClusters index -> its target
	for i, ec := range spec.ExternalClusters {
		role := RoleSource
		if _, first := c.ExternalCluster(ec.Name); first == i { // CNPG uses the first entry of a name
			role = roleOf(c, ec.Name)
		}
		switch {
		case ec.BarmanObjectStore != nil:
			bySource[i] = add(role, ec.Name, fmt.Sprintf("spec.externalClusters[%d].barmanObjectStore", i), ec.BarmanObjectStore, nameOr(ec.BarmanObjectStore.ServerName, ec.Name))
		case ec.Plugin != nil && ec.Plugin.Name == manifest.PluginName:
			// Plugin sources default to the *current* Cluster's name, unlike in-tree ones.
			path := fmt.Sprintf("spec.externalClusters[%d].plugin", i)
			t := pluginTarget(set, c, add, role, ec.Name, path, ec.Plugin)
			if _, ok := ec.Plugin.Parameters["serverName"]; !ok && ec.Name != c.Meta.Name {
				t.ServerNameNote = fmt.Sprintf("%s has no parameters.serverName, so the plugin reads the folder of this Cluster's name %q, not the external cluster's", path, c.Meta.Name)
				if role == RoleReplicaSource || role == RolePeerSource { // a peer archives under its own name
					t.Findings = append(t.Findings, providers.Warnf(path+".parameters.serverName", "set parameters.serverName to the serverName the source archives with (by default its own name)",
						"not set: the plugin reads %q's WAL from the folder %q, where it archives only if that is its serverName", ec.Name, c.Meta.Name+"/"))
				}
			}
			bySource[i] = t
		}
	}
	// The Cluster's own admission rules go to the target of the entry they concern, else to the
	// Cluster's first target.
	cfs := clusterFindings(c, webhook, inTree)
	for _, f := range methodFindings(set, c, inTree) {
		cfs = append(cfs, placed{f, -1})
	}
	for _, p := range cfs {
		if len(out) == 0 {
			break
		}
		home := out[0]
		if t := bySource[p.entry]; t != nil {
			home = t
		}
		home.Findings = append(home.Findings, p.Finding)
	}
	return out
}

const inTreeBackup = "spec.backup.barmanObjectStore"

// roleOf is the role of the external cluster name (its first entry): what this Cluster does with
// it now, following CNPG's IsReplica and the distributed topology.
func roleOf(c *manifest.Cluster, name string) string {
	var recovery, replica string
	if b := c.Spec.Bootstrap; b != nil && b.Recovery != nil {
		recovery = b.Recovery.Source
	}
	if r := c.Spec.Replica; r != nil {
		replica = r.Source
	}
	existing, _ := Existing(c)
	switch {
	case name == replica && c.IsReplica(): // a replica cluster also bootstraps from its source
		return RoleReplicaSource
	case name == recovery && !existing:
		return RoleRecoverySource
	case name == c.SelfName():
		return RoleSelf
	case name == replica:
		return RolePeerSource
	case name == recovery:
		return RoleRecoverySource
	}
	return RoleSource
}

type addFunc func(role, source, field string, conf *manifest.BarmanObjectStore, serverName string) *Target

// backupFromPlugin adds the backup target of a Cluster wired to the Barman Cloud plugin. Next to
// an in-tree destination (a migration), its ID ends in /plugin.
func backupFromPlugin(set *manifest.Set, c *manifest.Cluster, add addFunc, inTree bool) {
	for i, p := range c.Spec.Plugins {
		if p.Name != manifest.PluginName || !p.IsEnabled() {
			continue
		}
		path := fmt.Sprintf("spec.plugins[%d]", i)
		t := pluginTarget(set, c, add, RoleBackup, "", path, &p)
		if inTree {
			t.ID += "/plugin"
		}
		if p.IsWALArchiver == nil || !*p.IsWALArchiver {
			t.Findings = append(t.Findings, providers.Warnf(path+".isWALArchiver", "set isWALArchiver: true on this entry (on one plugin only, and never together with spec.backup.barmanObjectStore)",
				"isWALArchiver is not set: CNPG still archives WAL through this plugin (it calls every enabled plugin that can archive), but without the flag "+
					"a missing plugin sidecar silently archives nothing instead of failing, in-tree archiving (spec.backup.barmanObjectStore) is not switched off, "+
					"and CNPG does not count WAL archiving as active (new instances are not created from volume-snapshot backups; metrics and upgrades ignore the plugin)"))
		}
	}
}

// placed is a Cluster-level finding and the externalClusters entry it concerns (-1: none).
type placed struct {
	providers.Finding
	entry int
}

var retentionRE = regexp.MustCompile(`^[1-9][0-9]*[dwm]$`)

// clusterFindings applies CNPG's admission rules that concern the Cluster rather than one
// object-store block: its validating webhook (internal/webhook/v1/cluster_webhook.go; the
// detail texts are CNPG's) and the CRD schema. webhook is false when the Cluster turns CNPG's
// validation off: its rules then only warn. CNPG reports some replica rules under Go-ish paths
// (spec.replicaCluster.*); the findings name the JSON path and quote CNPG's.
func clusterFindings(c *manifest.Cluster, webhook, inTree bool) []placed {
	var out []placed
	put := func(entry int, f providers.Finding) { out = append(out, placed{f, entry}) }
	// rejects words a rule of CNPG's webhook.
	rejects := func(entry int, field, fix, what, reason string) {
		if !webhook {
			put(entry, providers.Warnf(field, fix, "%s: CNPG's webhook would reject this (%s), but the Cluster sets %s: disabled", what, reason, ValidationAnnotation))
			return
		}
		f := providers.Failf(field, fix, "%s: CNPG rejects this (%s)", what, reason)
		f.Soft = true // the object stores can still be probed as written
		put(entry, f)
	}
	spec := c.Spec
	seen := map[string]int{}
	var dups []string
	dupEntry := -1
	for i, ec := range spec.ExternalClusters {
		path := fmt.Sprintf("spec.externalClusters[%d]", i)
		if n, ok := seen[ec.Name]; ok && n == 1 {
			dups = append(dups, fmt.Sprintf("%q", ec.Name))
			if dupEntry < 0 {
				dupEntry = i
			}
		}
		seen[ec.Name]++
		if ec.ConnectionParameters == nil && ec.BarmanObjectStore == nil && ec.Plugin == nil {
			rejects(i, path, "add barmanObjectStore, plugin or connectionParameters to the entry, or remove it",
				fmt.Sprintf("external cluster %q has none of connectionParameters, barmanObjectStore and plugin", ec.Name), "one of connectionParameters, plugin and barmanObjectStore is required")
		}
		const unsafe = "cannot contain a path separator or a '..' component"
		if unsafePathComponent(ec.Name) {
			rejects(i, path+".name", "name the external cluster without /, \\ or a bare . or ..", fmt.Sprintf("%q", ec.Name), unsafe)
		}
		for _, sel := range []struct {
			name string
			ref  *manifest.SecretKeySelector
		}{{"sslCert", ec.SSLCert}, {"sslKey", ec.SSLKey}, {"sslRootCert", ec.SSLRootCert}} {
			if sel.ref == nil {
				continue
			}
			if unsafePathComponent(sel.ref.Name) {
				rejects(i, path+"."+sel.name+".name", "use a Secret name without / or \\", fmt.Sprintf("%q", sel.ref.Name), unsafe)
			}
			if unsafePathComponent(sel.ref.Key) {
				rejects(i, path+"."+sel.name+".key", "use a Secret key without / or \\", fmt.Sprintf("%q", sel.ref.Key), unsafe)
			}
		}
	}
	if len(dups) > 0 {
		rejects(dupEntry, "spec.externalClusters", "give every external cluster its own name", "more than one entry is named "+strings.Join(dups, ", "),
			"the list of external clusters contains duplicate values")
	}
	exists := func(name string) bool { ec, _ := c.ExternalCluster(name); return ec != nil }
	if b := spec.Bootstrap; b != nil && b.Recovery != nil && b.Recovery.Source != "" {
		src := b.Recovery.Source
		switch ec, i := c.ExternalCluster(src); {
		case ec == nil:
			rejects(-1, "spec.bootstrap.recovery.source", "name an entry of spec.externalClusters", fmt.Sprintf("%q", src), "External cluster "+text.Safe(src)+" not found")
		case ec.ConnectionParameters == nil && ec.BarmanObjectStore == nil && ec.Plugin == nil:
			rejects(i, "spec.bootstrap.recovery.source", "give the external cluster a barmanObjectStore or plugin", fmt.Sprintf("%q", src),
				"External cluster "+text.Safe(src)+" cannot be used for recovery: missing connection parameters, Barman, or CNPG-i configuration")
		}
	}
	if b := spec.Bootstrap; b != nil && b.PgBaseBackup != nil && b.PgBaseBackup.Source != "" && !exists(b.PgBaseBackup.Source) {
		src := b.PgBaseBackup.Source
		rejects(-1, "spec.bootstrap.pg_basebackup.source", "name an entry of spec.externalClusters", fmt.Sprintf("%q", src), "External cluster "+text.Safe(src)+" not found")
	}
	if r := spec.Replica; r != nil {
		if r.Enabled != nil && r.Primary != "" {
			rejects(-1, "spec.replica.enabled", "remove enabled (the distributed topology uses primary), or remove primary",
				"enabled and primary are both set", "replica mode enabled is not compatible with the primary field; reported at spec.replicaCluster.enabled")
		}
		if r.Source == "" {
			f := providers.Failf("spec.replica.source", "name the external cluster to replicate from", "spec.replica.source is required: the API server rejects this (CRD: required, minLength 1)")
			f.Soft = true
			put(-1, f)
		} else if !exists(r.Source) {
			rejects(-1, "spec.replica.source", "name an entry of spec.externalClusters", fmt.Sprintf("%q", r.Source), "External cluster "+text.Safe(r.Source)+" not found; reported at spec.replicaCluster.primaryServerName")
		}
		if r.Self != "" && !exists(r.Self) {
			rejects(-1, "spec.replica.self", "add an entry describing this Cluster's own archive to spec.externalClusters (every Cluster of a distributed topology lists all of them)",
				fmt.Sprintf("%q", r.Self), "External cluster "+text.Safe(r.Self)+" not found; reported at spec.replicaCluster.self")
		}
		if r.Primary != "" && !exists(r.Primary) {
			rejects(-1, "spec.replica.primary", "add an entry for every Cluster of the distributed topology to spec.externalClusters",
				fmt.Sprintf("%q", r.Primary), "External cluster "+text.Safe(r.Primary)+" not found; reported at spec.replicaCluster.primary")
		}
		if r.PromotionToken != "" && c.IsReplica() {
			rejects(-1, "spec.replica.promotionToken", "set promotionToken in the same edit that sets spec.replica.primary to this Cluster",
				"a promotion token on a replica", "promotionToken is only allowed for primary clusters; reported at spec.replicaCluster.token")
		}
	}
	var archivers []string
	for _, p := range spec.Plugins {
		if p.IsEnabled() && p.IsWALArchiver != nil && *p.IsWALArchiver {
			archivers = append(archivers, fmt.Sprintf("%q", p.Name))
		}
	}
	if inTree && len(archivers) > 0 {
		rejects(-1, "spec.plugins", "remove spec.backup.barmanObjectStore when a plugin archives WAL (or drop isWALArchiver while both run)",
			"WAL-archiver plugin "+strings.Join(archivers, ", ")+" next to spec.backup.barmanObjectStore", "Cannot enable a WAL archiver plugin when barmanObjectStore is configured")
	}
	if len(archivers) > 1 {
		rejects(-1, "spec.plugins", "keep isWALArchiver: true on exactly one plugin entry", strings.Join(archivers, ", ")+" are WAL archivers", "Cannot enable more than one WAL archiver plugin")
	}
	if spec.ServiceAccountName != "" && spec.ServiceAccountTemplate != nil {
		rejects(-1, "spec.serviceAccountName", "keep spec.serviceAccountName (an existing ServiceAccount) or spec.serviceAccountTemplate (CNPG makes one), not both",
			"serviceAccountName and serviceAccountTemplate are both set", "the two fields are mutually exclusive")
	}
	if b := spec.Backup; b != nil && b.RetentionPolicy != "" {
		switch {
		case !retentionRE.MatchString(b.RetentionPolicy):
			f := providers.Failf("spec.backup.retentionPolicy", "use a number followed by d (days), w (weeks) or m (months), e.g. 30d",
				"%q is not a valid retention policy: the API server rejects this (CRD pattern ^[1-9][0-9]*[dwm]$)", b.RetentionPolicy)
			f.Soft = true
			put(-1, f)
		case !inTree:
			put(-1, providers.Warnf("spec.backup.retentionPolicy", "set the retention in the ObjectStore's spec.retentionPolicy",
				"ignored: Retention policies specified in .spec.backup.retentionPolicy are only used by the in-tree barman-cloud support, which is not being used in this cluster"))
		}
	}
	keys := make([]string, 0, len(c.Meta.Annotations))
	for k := range c.Meta.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.Meta.Annotations[k]
		switch {
		case k == SkipEmptyWALAnnotation && v != "enabled":
			put(-1, providers.Warnf("metadata.annotations."+SkipEmptyWALAnnotation, `write exactly "enabled" to skip the check`,
				"%q is not \"enabled\": CNPG compares the value exactly (case-sensitive), so the empty-archive check stays on", v))
		case k != SkipEmptyWALAnnotation && strings.EqualFold(k, SkipEmptyWALAnnotation):
			put(-1, providers.Warnf(fmt.Sprintf("metadata.annotations[%q]", k), "spell the annotation "+SkipEmptyWALAnnotation,
				"annotation keys are case-sensitive: CNPG reads %s, so the empty-archive check stays on", SkipEmptyWALAnnotation))
		}
	}
	return out
}

// unsafePathComponent is CNPG's rule for names it joins into file paths: no / or \, and not . or ..
func unsafePathComponent(v string) bool {
	return v == "." || v == ".." || strings.ContainsAny(v, `/\`)
}

// pluginTarget resolves the ObjectStore named by a plugin entry's parameters and adds its target.
func pluginTarget(set *manifest.Set, c *manifest.Cluster, add addFunc, role, source, path string, p *manifest.PluginConfiguration) *Target {
	name := p.Parameters["barmanObjectName"]
	serverName := nameOr(p.Parameters["serverName"], c.Meta.Name)
	if name == "" {
		t := add(role, source, path, nil, serverName)
		t.Findings = append(t.Findings, providers.Failf(path+".parameters.barmanObjectName", "name the ObjectStore in parameters.barmanObjectName", "the Barman Cloud plugin needs parameters.barmanObjectName"))
		return t
	}
	os := set.ObjectStore(c.Meta.Namespace, name)
	if os == nil {
		t := add(role, source, path, nil, serverName)
		msg := fmt.Sprintf("ObjectStore %s/%s not found", c.Meta.Namespace, name)
		if p := set.Problems["ObjectStore "+c.Meta.Namespace+"/"+name]; p != "" {
			msg = p
		}
		for _, o := range set.ObjectStores {
			if o.Meta.Name == name {
				msg += fmt.Sprintf(" (there is one in namespace %q, but the plugin only reads the Cluster's namespace)", o.Meta.Namespace)
			}
		}
		t.Findings = append(t.Findings, providers.Failf(path+".parameters.barmanObjectName", "create the ObjectStore in the Cluster's namespace, or fix the name", "%s", msg))
		return t
	}
	field := fmt.Sprintf("ObjectStore %s: spec.configuration", name)
	conf := os.Spec.Configuration
	t := add(role, source, field, &conf, serverName)
	t.Store = os
	for _, is := range os.Issues {
		full := fmt.Sprintf("ObjectStore %s: %s", name, is.Path)
		where := fmt.Sprintf(" (%s line %d)", os.Origin.File, is.Line)
		if strings.HasPrefix(os.Origin.File, manifest.LivePrefix) {
			where = ""
		}
		t.Findings = append(t.Findings, providers.Failf(full, "fix the field name (names are case-sensitive)", "%s%s", is.Msg, where))
	}
	if conf.ServerName != "" {
		t.Findings = append(t.Findings, providers.Failf(field+".serverName", "remove serverName from the ObjectStore; set it in the Cluster's plugin parameters.serverName",
			"serverName is not allowed in an ObjectStore's configuration: the API server rejects this (ObjectStore CRD: use the 'serverName' plugin parameter in the Cluster resource)"))
	}
	if rp := os.Spec.RetentionPolicy; rp != "" && !retentionRE.MatchString(rp) {
		f := providers.Failf(fmt.Sprintf("ObjectStore %s: spec.retentionPolicy", name), "use a number followed by d (days), w (weeks) or m (months), e.g. 30d", "%q is not a valid retention policy: the API server rejects this (CRD pattern ^[1-9][0-9]*[dwm]$)", rp)
		f.Soft = true
		t.Findings = append(t.Findings, f)
	}
	return t
}

// identityFindings: a pod identity (IRSA, Azure workload identity, GKE workload identity) asked
// for by any credentials block needs its annotation on the Cluster's ServiceAccount, which CNPG
// takes from serviceAccountTemplate.
func identityFindings(c *manifest.Cluster, field string, conf *manifest.BarmanObjectStore, reg *providers.Registry) []providers.Finding {
	if c.Spec.ServiceAccountName != "" {
		// A pre-existing ServiceAccount (CNPG ≥ 1.29): CNPG neither makes nor annotates it, so its
		// annotations are not in the Cluster; the Job runs as it and tests the identity for real.
		return nil
	}
	var ann map[string]string
	if c.Spec.ServiceAccountTemplate != nil {
		ann = c.Spec.ServiceAccountTemplate.Metadata.Annotations
	}
	var fs []providers.Finding
	for _, d := range reg.Drivers() {
		sub, info := d.Credentials(conf).PodIdentity, d.Info()
		if sub == "" || info.IdentityAnnotation == "" || ann[info.IdentityAnnotation] != "" {
			continue
		}
		fs = append(fs, providers.Warnf(field+"."+sub, fmt.Sprintf("add the annotation %s to spec.serviceAccountTemplate.metadata.annotations", info.IdentityAnnotation),
			"%s is set, but the Cluster's serviceAccountTemplate has no %s annotation: the database pods get %s only through a node or instance identity", sub, info.IdentityAnnotation, info.IdentityName))
	}
	return fs
}

// Provider is the name of the target's provider ("" when no driver serves its destination).
func (t *Target) Provider() string {
	if t.Driver == nil {
		return ""
	}
	return t.Driver.Info().Name
}

func nameOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
