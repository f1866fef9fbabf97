// Package targets turns Clusters (and the ObjectStores they use) into the list of object-store
// targets to check: the backup destination and every external cluster used as a source.
package targets

import (
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
}

// ReadOnly reports whether the target must never be written (sources).
func (t *Target) ReadOnly() bool { return t.Role != RoleBackup }

// SkipEmptyWALCheck reports whether the Cluster disables the empty-archive check.
func (t *Target) SkipEmptyWALCheck() bool {
	return strings.EqualFold(t.Cluster.Meta.Annotations[SkipEmptyWALAnnotation], "enabled")
}

// Provider returns the provider of the destinationPath ("" when it is not recognised).
func (t *Target) Provider() string {
	if t.Conf == nil {
		return ""
	}
	return providers.ProviderOf(t.Conf.DestinationPath)
}

// ProviderTarget is the view a provider driver gets.
func (t *Target) ProviderTarget() *providers.Target {
	return &providers.Target{Conf: t.Conf, Field: t.Field, Namespace: t.Cluster.Meta.Namespace, ServerName: t.ServerName, Env: t.Env, Secret: t.Lookup}
}

// SecretsFromSet returns a lookup reading Secrets of namespace from a manifest Set.
func SecretsFromSet(set *manifest.Set, namespace string) providers.SecretLookup {
	return func(name, key string) ([]byte, error) {
		s := set.Secret(namespace, name)
		if s == nil {
			return nil, fmt.Errorf("Secret %s/%s not found", namespace, name)
		}
		v, ok := s.Data[key]
		if !ok {
			return nil, fmt.Errorf("Secret %s/%s has no key %q", namespace, name, key)
		}
		return v, nil
	}
}

var retentionRE = regexp.MustCompile(`^[1-9][0-9]*[dwm]$`)

// Build returns the targets of every Cluster in set, sorted by namespace, name and role.
// lookup builds the Secret lookup for a namespace (from files or a live cluster).
func Build(set *manifest.Set, lookup func(namespace string) providers.SecretLookup) []*Target {
	clusters := append([]*manifest.Cluster(nil), set.Clusters...)
	sort.Slice(clusters, func(i, j int) bool {
		a, b := clusters[i].Meta, clusters[j].Meta
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	var out []*Target
	for _, c := range clusters {
		out = append(out, forCluster(set, c, lookup(c.Meta.Namespace))...)
	}
	return out
}

func forCluster(set *manifest.Set, c *manifest.Cluster, lookup providers.SecretLookup) []*Target {
	var out []*Target
	add := func(role, source, field string, conf *manifest.BarmanObjectStore, serverName string) *Target {
		t := &Target{Cluster: c, Role: role, Source: source, Field: field, Conf: conf, ServerName: serverName, Lookup: lookup, Env: map[string]string{}}
		t.ID = c.Meta.Namespace + "/" + c.Meta.Name + "/" + role
		if source != "" {
			t.ID += "/" + source
		}
		for _, is := range c.Issues {
			if strings.HasPrefix(is.Path, field+".") {
				msg := fmt.Sprintf("%s (line %d)", is.Msg, is.Line)
				if strings.Contains(is.Msg, `"endpointURL"`) && conf.EndpointURL == "" {
					msg += "; without endpointURL barman-cloud sends every request to AWS S3"
				}
				t.Findings = append(t.Findings, providers.Failf(is.Path, "fix the field name (names are case-sensitive)", "%s", msg))
			}
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
	recoverySource, replicaSource := "", ""
	if spec.Bootstrap != nil && spec.Bootstrap.Recovery != nil {
		recoverySource = spec.Bootstrap.Recovery.Source
	}
	if spec.Replica != nil {
		replicaSource = spec.Replica.Source
	}
	for i, ec := range spec.ExternalClusters {
		if ec.BarmanObjectStore == nil {
			continue
		}
		role := RoleSource
		switch ec.Name {
		case recoverySource:
			role = RoleRecoverySource
		case replicaSource:
			role = RoleReplicaSource
		}
		add(role, ec.Name, fmt.Sprintf("spec.externalClusters[%d].barmanObjectStore", i), ec.BarmanObjectStore, nameOr(ec.BarmanObjectStore.ServerName, ec.Name))
	}
	return out
}

func nameOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
