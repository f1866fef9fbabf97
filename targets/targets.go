// Package targets turns Clusters (and the ObjectStores they use) into the list of object-store
// targets to check: the backup destination and every external cluster used as a source.
package targets

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Roles of a target.
const (
	RoleBackup         = "backup"
	RoleRecoverySource = "recovery-source"
	RoleReplicaSource  = "replica-source"
	RoleSource         = "source"
)

// SkipEmptyWALAnnotation disables CNPG's empty-archive check.
const SkipEmptyWALAnnotation = "cnpg.io/skipEmptyWalArchiveCheck"

// Target is one object-store configuration a Cluster uses.
type Target struct {
	ID         string // namespace/cluster/role[/source]
	Cluster    *manifest.Cluster
	Role       string
	Source     string // external cluster name, for sources
	Field      string // field path of the configuration block
	Conf       *manifest.BarmanObjectStore
	ServerName string
	Env        map[string]string   // environment the backup client runs with
	Findings   []providers.Finding // decoding and wiring problems found while building
	Lookup     providers.SecretLookup
	Store      *manifest.ObjectStore // the plugin's ObjectStore, when the target comes from the plugin
	Driver     providers.Driver      // the provider serving Conf's destinationPath (nil: none)
}

// ReadOnly reports whether the target must never be written (sources).
func (t *Target) ReadOnly() bool { return t.Role != RoleBackup }

// SkipEmptyWALCheck reports whether the Cluster disables the empty-archive check.
func (t *Target) SkipEmptyWALCheck() bool {
	return strings.EqualFold(t.Cluster.Meta.Annotations[SkipEmptyWALAnnotation], "enabled")
}

// ProviderTarget is the view a provider driver gets.
func (t *Target) ProviderTarget() *providers.Target {
	return &providers.Target{Conf: t.Conf, Field: t.Field, Namespace: t.Cluster.Meta.Namespace, ServerName: t.ServerName, Env: t.Env, Secret: t.Lookup}
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

var retentionRE = regexp.MustCompile(`^[1-9][0-9]*[dwm]$`)

// Build returns the targets of every Cluster in set, sorted by namespace, name and role.
// lookup builds the Secret lookup for a namespace (from files or a live cluster); reg tells each
// target's provider.
func Build(set *manifest.Set, lookup func(namespace string) providers.SecretLookup, reg *providers.Registry) []*Target {
	clusters := append([]*manifest.Cluster(nil), set.Clusters...)
	sort.Slice(clusters, func(i, j int) bool {
		a, b := clusters[i].Meta, clusters[j].Meta
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	var out []*Target
	for _, c := range clusters {
		out = append(out, forCluster(set, c, lookup(c.Meta.Namespace), reg)...)
	}
	return out
}

func forCluster(set *manifest.Set, c *manifest.Cluster, lookup providers.SecretLookup, reg *providers.Registry) []*Target {
	var out []*Target
	var add addFunc
	add = func(role, source, field string, conf *manifest.BarmanObjectStore, serverName string) *Target {
		t := &Target{Cluster: c, Role: role, Source: source, Field: field, Conf: conf, ServerName: serverName, Lookup: lookup, Env: map[string]string{}}
		t.ID = c.Meta.Namespace + "/" + c.Meta.Name + "/" + role
		if source != "" {
			t.ID += "/" + source
		}
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
	if b := spec.Backup; b != nil && b.BarmanObjectStore != nil {
		t := add(RoleBackup, "", "spec.backup.barmanObjectStore", b.BarmanObjectStore, nameOr(b.BarmanObjectStore.ServerName, c.Meta.Name))
		t.Findings = append(t.Findings, providers.Warnf("spec.backup.barmanObjectStore", "move the configuration to an ObjectStore and wire it with spec.plugins (barman-cloud.cloudnative-pg.io)",
			"in-tree barmanObjectStore is deprecated in favour of the Barman Cloud plugin (removed in CNPG 1.31.0)"))
		if rp := b.RetentionPolicy; rp != "" && !retentionRE.MatchString(rp) {
			f := providers.Failf("spec.backup.retentionPolicy", "use a number followed by d (days), w (weeks) or m (months), e.g. 30d", "%q is not a valid retention policy", rp)
			f.Soft = true
			t.Findings = append(t.Findings, f)
		}
	}
	backupFromPlugin(set, c, add)
	recoverySource, replicaSource := "", ""
	if spec.Bootstrap != nil && spec.Bootstrap.Recovery != nil {
		recoverySource = spec.Bootstrap.Recovery.Source
	}
	if spec.Replica != nil {
		replicaSource = spec.Replica.Source
	}
	for i, ec := range spec.ExternalClusters {
		role := RoleSource
		switch ec.Name { // a replica cluster also bootstraps from its source: replica wins
		case replicaSource:
			role = RoleReplicaSource
		case recoverySource:
			role = RoleRecoverySource
		}
		switch {
		case ec.BarmanObjectStore != nil:
			add(role, ec.Name, fmt.Sprintf("spec.externalClusters[%d].barmanObjectStore", i), ec.BarmanObjectStore, nameOr(ec.BarmanObjectStore.ServerName, ec.Name))
		case ec.Plugin != nil && ec.Plugin.Name == manifest.PluginName:
			// Plugin sources default to the *current* Cluster's name, unlike in-tree ones.
			path := fmt.Sprintf("spec.externalClusters[%d].plugin", i)
			pluginTarget(set, c, add, role, ec.Name, path, ec.Plugin)
		}
	}
	return out
}

type addFunc func(role, source, field string, conf *manifest.BarmanObjectStore, serverName string) *Target

// backupFromPlugin adds the backup target of a Cluster wired to the Barman Cloud plugin, and the
// wiring problems CNPG and the plugin would reject or silently get wrong.
func backupFromPlugin(set *manifest.Set, c *manifest.Cluster, add addFunc) {
	var entries []int
	archivers := 0
	for i, p := range c.Spec.Plugins {
		if p.Name != manifest.PluginName || !p.IsEnabled() {
			if p.IsWALArchiver != nil && *p.IsWALArchiver && p.IsEnabled() {
				archivers++
			}
			continue
		}
		entries = append(entries, i)
		if p.IsWALArchiver != nil && *p.IsWALArchiver {
			archivers++
		}
	}
	for _, i := range entries {
		p := c.Spec.Plugins[i]
		path := fmt.Sprintf("spec.plugins[%d]", i)
		t := pluginTarget(set, c, add, RoleBackup, "", path, &p)
		if t == nil {
			continue
		}
		if p.IsWALArchiver == nil || !*p.IsWALArchiver {
			t.Findings = append(t.Findings, providers.Failf(path+".isWALArchiver", "set isWALArchiver: true on this plugin entry",
				"isWALArchiver is not true: backups are configured but WAL is never archived, so no backup is restorable"))
		}
		if archivers > 1 {
			t.Findings = append(t.Findings, providers.Failf("spec.plugins", "keep exactly one plugin entry with isWALArchiver: true", "%d plugins are WAL archivers; CNPG allows only one", archivers))
		}
		if c.Spec.Backup != nil && c.Spec.Backup.BarmanObjectStore != nil && p.IsWALArchiver != nil && *p.IsWALArchiver {
			t.Findings = append(t.Findings, providers.Failf("spec.backup.barmanObjectStore", "remove spec.backup.barmanObjectStore when the plugin archives WAL",
				"a WAL-archiver plugin cannot be combined with in-tree barmanObjectStore (CNPG rejects this)"))
		}
	}
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
	for _, e := range sidecarEnv(os) {
		t.Env[e.Name] = e.Value
	}
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
			"serverName is not allowed in an ObjectStore's configuration"))
	}
	if rp := os.Spec.RetentionPolicy; rp != "" && !retentionRE.MatchString(rp) {
		f := providers.Failf(fmt.Sprintf("ObjectStore %s: spec.retentionPolicy", name), "use a number followed by d (days), w (weeks) or m (months), e.g. 30d", "%q is not a valid retention policy", rp)
		f.Soft = true
		t.Findings = append(t.Findings, f)
	}
	return t
}

func sidecarEnv(o *manifest.ObjectStore) []manifest.EnvVar {
	if o.Spec.InstanceSidecarConfiguration == nil {
		return nil
	}
	return o.Spec.InstanceSidecarConfiguration.Env
}

// identityFindings: a pod identity (IRSA, Azure workload identity, GKE workload identity) asked
// for by any credentials block needs its annotation on the Cluster's ServiceAccount, which CNPG
// takes from serviceAccountTemplate.
func identityFindings(c *manifest.Cluster, field string, conf *manifest.BarmanObjectStore, reg *providers.Registry) []providers.Finding {
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

// Archiving reports whether a live Cluster's status says it already archives WAL (then its
// archive is expected to be non-empty).
func (t *Target) Archiving() bool {
	st := t.Cluster.Status
	if st == nil || t.Role != RoleBackup {
		return false
	}
	for _, c := range st.Conditions {
		if c.Type == "ContinuousArchiving" && c.Status == "True" {
			return true
		}
	}
	return st.FirstRecoverabilityPoint != "" || st.LastSuccessfulBackup != ""
}

func nameOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
