package targets

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// ObjectLookup returns every key of a Secret or ConfigMap of the namespace (envFrom reads them
// all, valueFrom one). A missing object is an error naming it (providers.SecretNotFound, or
// ConfigMapNotFound).
type ObjectLookup func(ctx context.Context, name string) (map[string][]byte, error)

// EnvSources are where the backup client's environment is read from.
type EnvSources struct {
	Secrets    func(namespace string) ObjectLookup
	ConfigMaps func(namespace string) ObjectLookup
	// PodEnv is the process's own environment when cnpg-preflight runs as the Pod (the Job, with
	// the Cluster's ServiceAccount: what identity webhooks inject is there); nil otherwise — the
	// environment of the machine running the CLI is never the backup client's.
	PodEnv func(string) string
	// PodEnvNames lists the names PodEnv may hold (the process environment's names).
	PodEnvNames []string
}

// ReloadLabel is the label that makes CNPG reload a Secret mounted in the instance Pods when it
// changes (otherwise only on kubectl cnpg reload or a restart).
const ReloadLabel = "cnpg.io/reload"

// ConfigMapNotFound is the error of a lookup whose ConfigMap does not exist.
func ConfigMapNotFound(namespace, name string) error {
	return fmt.Errorf("ConfigMap %s/%s not found", namespace, name)
}

// SourcesFromSet reads Secrets and ConfigMaps from a manifest Set (files).
func SourcesFromSet(set *manifest.Set) EnvSources {
	return EnvSources{
		Secrets: func(ns string) ObjectLookup {
			return func(_ context.Context, name string) (map[string][]byte, error) {
				if s := set.Secret(ns, name); s != nil {
					return s.Data, nil
				}
				return nil, providers.SecretNotFound(ns, name)
			}
		},
		ConfigMaps: func(ns string) ObjectLookup {
			return func(_ context.Context, name string) (map[string][]byte, error) {
				if c := set.ConfigMap(ns, name); c != nil {
					return c.Data, nil
				}
				return nil, ConfigMapNotFound(ns, name)
			}
		},
	}
}

// envVarName is what the kubelet accepts from envFrom (C identifier-like names; newer
// Kubernetes accept any printable name, which the backup client would only see if it is valid).
var envVarName = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// envLayer is one container env/envFrom list with the field path it was read at.
type envLayer struct {
	field   string // e.g. spec.env, ObjectStore s: spec.instanceSidecarConfiguration.env
	env     []manifest.EnvVar
	envFrom []manifest.EnvFromSource
	// onlyNew: the layer only adds variables not set by the layers before (the plugin merges
	// the ObjectStores' env under the instance container's).
	onlyNew bool
}

// clientEnv is how a target's environment is made: the layers in order, read with the lookups.
type clientEnv struct {
	namespace string
	layers    []envLayer
	src       EnvSources
}

// resolve builds the environment. Kubernetes sets envFrom first (later sources win), then env
// (which wins over envFrom); a missing non-optional Secret, ConfigMap or key keeps the container
// from starting, so the backup client never runs: a failure naming the field.
func (ce *clientEnv) resolve(ctx context.Context) (map[string]string, []providers.Finding) {
	out := map[string]string{}
	if ce.src.PodEnv != nil {
		for _, k := range ce.src.PodEnvNames {
			if v := ce.src.PodEnv(k); v != "" && providers.Honoured(k) {
				out[k] = v
			}
		}
	}
	var fs []providers.Finding
	before := map[string]bool{} // set by an earlier layer (not by the Pod's own environment)
	for _, l := range ce.layers {
		mine := map[string]bool{}
		for i, ef := range l.envFrom {
			path := fmt.Sprintf("%s[%d]", l.field+"From", i)
			var data map[string][]byte
			var err error
			var ref *manifest.LocalObjectRef
			kind := "Secret"
			switch {
			case ef.SecretRef != nil:
				ref, path = ef.SecretRef, path+".secretRef"
				data, err = ce.lookup(ctx, true, ref.Name)
			case ef.ConfigMapRef != nil:
				ref, path, kind = ef.ConfigMapRef, path+".configMapRef", "ConfigMap"
				data, err = ce.lookup(ctx, false, ref.Name)
			default:
				continue
			}
			if err != nil {
				if !ref.IsOptional() || !notFound(err) {
					fs = append(fs, envFailure(path, kind, ce.namespace, ref.Name, "", err))
				}
				continue
			}
			for k, v := range data {
				name := ef.Prefix + k
				if !envVarName.MatchString(name) {
					continue
				}
				if !before[name] || !l.onlyNew {
					out[name] = string(v)
					mine[name] = true
				}
			}
		}
		for i, e := range l.env {
			path := fmt.Sprintf("%s[%d]", l.field, i)
			if l.onlyNew && before[e.Name] {
				continue
			}
			if e.ValueFrom == nil {
				out[e.Name] = e.Value
				mine[e.Name] = true
				continue
			}
			var ref *manifest.KeyRef
			secret := true
			switch vf := e.ValueFrom; {
			case vf.SecretKeyRef != nil:
				ref, path = vf.SecretKeyRef, path+".valueFrom.secretKeyRef"
			case vf.ConfigMapKeyRef != nil:
				ref, path, secret = vf.ConfigMapKeyRef, path+".valueFrom.configMapKeyRef", false
			default:
				continue // fieldRef / resourceFieldRef: the Pod's own fields, none the client reads
			}
			kind := map[bool]string{true: "Secret", false: "ConfigMap"}[secret]
			data, err := ce.lookup(ctx, secret, ref.Name)
			if err != nil {
				if !ref.IsOptional() || !notFound(err) {
					fs = append(fs, envFailure(path, kind, ce.namespace, ref.Name, e.Name, err))
				}
				continue
			}
			v, ok := data[ref.Key]
			if !ok {
				if !ref.IsOptional() {
					fs = append(fs, providers.Failf(path, fmt.Sprintf("add key %q to %s %s/%s, or fix the reference (or mark it optional)", ref.Key, kind, ce.namespace, ref.Name),
						"%s %s/%s has no key %q (variable %s): the container does not start, so the backup client never runs", kind, ce.namespace, ref.Name, ref.Key, e.Name))
				}
				continue
			}
			out[e.Name] = string(v)
			mine[e.Name] = true
		}
		for k := range mine {
			before[k] = true
		}
	}
	return out, fs
}

func (ce *clientEnv) lookup(ctx context.Context, secret bool, name string) (map[string][]byte, error) {
	get := ce.src.ConfigMaps
	if secret {
		get = ce.src.Secrets
	}
	if get == nil {
		return nil, fmt.Errorf("cannot read %s %s/%s", map[bool]string{true: "Secret", false: "ConfigMap"}[secret], ce.namespace, name)
	}
	return get(ce.namespace)(ctx, name)
}

func notFound(err error) bool {
	var r interface{ Remediation() string }
	if errors.As(err, &r) { // a live read the identity may not do: not an absent object
		return false
	}
	msg := err.Error()
	return len(msg) > 10 && msg[len(msg)-10:] == " not found"
}

func envFailure(path, kind, ns, name, variable string, err error) providers.Finding {
	fix := fmt.Sprintf("create the %s %s/%s, fix the reference, or mark it optional", kind, ns, name)
	var r interface{ Remediation() string }
	if errors.As(err, &r) && r.Remediation() != "" {
		fix = r.Remediation()
	}
	what := ""
	if variable != "" {
		what = " (variable " + variable + ")"
	}
	return providers.Failf(path, fix, "%s%s: the container does not start without it, so the backup client never runs", err.Error(), what)
}

// envFor is how the environment of a target's backup client is made.
//   - In-tree: barman-cloud runs in the instance container, which gets spec.envFrom and spec.env.
//   - Plugin: the sidecar gets the instance container's env (spec.env, not envFrom), then the
//     variables of the ObjectStores' instanceSidecarConfiguration.env that it does not set yet —
//     the backup store's, the recovery source's, then the replica source's (the plugin's
//     lifecycle hook merges them in that order, first wins).
func envFor(set *manifest.Set, c *manifest.Cluster, plugin bool, src EnvSources) *clientEnv {
	ce := &clientEnv{namespace: c.Meta.Namespace, src: src}
	if !plugin {
		// in-tree only: the plugin re-reads its Secrets itself
		ce.layers = append(ce.layers, envLayer{field: "spec.env", env: c.Spec.Env, envFrom: c.Spec.EnvFrom})
		return ce
	}
	ce.layers = append(ce.layers, envLayer{field: "spec.env", env: c.Spec.Env})
	for _, name := range sidecarStores(c) {
		if os := set.ObjectStore(c.Meta.Namespace, name); os != nil && os.Spec.InstanceSidecarConfiguration != nil {
			ce.layers = append(ce.layers, envLayer{field: fmt.Sprintf("ObjectStore %s: spec.instanceSidecarConfiguration.env", name), env: os.Spec.InstanceSidecarConfiguration.Env, onlyNew: true})
		}
	}
	return ce
}

// sidecarStores are the ObjectStores whose sidecar env the plugin merges, in its order: the
// spec.plugins entry's barmanObjectName, the recovery source's, the replica source's.
func sidecarStores(c *manifest.Cluster) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p *manifest.PluginConfiguration) {
		if p != nil && p.Name == manifest.PluginName && p.Parameters["barmanObjectName"] != "" && !seen[p.Parameters["barmanObjectName"]] {
			seen[p.Parameters["barmanObjectName"]] = true
			out = append(out, p.Parameters["barmanObjectName"])
		}
	}
	for i := range c.Spec.Plugins {
		if p := &c.Spec.Plugins[i]; p.IsEnabled() {
			add(p)
			break
		}
	}
	if b := c.Spec.Bootstrap; b != nil && b.Recovery != nil && b.Recovery.Source != "" {
		if ec, _ := c.ExternalCluster(b.Recovery.Source); ec != nil {
			add(ec.Plugin)
		}
	}
	if r := c.Spec.Replica; r != nil && r.Source != "" {
		if ec, _ := c.ExternalCluster(r.Source); ec != nil {
			add(ec.Plugin)
		}
	}
	return out
}

// EnvRefs are the Secrets and ConfigMaps a Cluster's backup clients' environments reference
// (the Job's Role grants get on exactly these).
func EnvRefs(set *manifest.Set, c *manifest.Cluster, ts []*Target) (secrets, configMaps []string) {
	var layers []envLayer
	inTree, plugin := false, false
	for _, t := range ts {
		if t.Conf == nil || t.ConfigOnly() != "" {
			continue
		}
		if t.Store != nil {
			plugin = true
		} else {
			inTree = true
		}
	}
	if inTree {
		layers = append(layers, envFor(set, c, false, EnvSources{}).layers...)
	}
	if plugin {
		layers = append(layers, envFor(set, c, true, EnvSources{}).layers...)
	}
	s, m := map[string]bool{}, map[string]bool{}
	for _, l := range layers {
		for _, ef := range l.envFrom {
			if ef.SecretRef != nil && ef.SecretRef.Name != "" {
				s[ef.SecretRef.Name] = true
			}
			if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name != "" {
				m[ef.ConfigMapRef.Name] = true
			}
		}
		for _, e := range l.env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil && r.Name != "" {
				s[r.Name] = true
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil && r.Name != "" {
				m[r.Name] = true
			}
		}
	}
	return keys(s), keys(m)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// envFindings are what the environment's shape says before anything is read: a pod identity
// that does not reach the plugin's sidecar; variables set both in spec.env and in an
// ObjectStore's sidecar env (the instance container's wins).
func envFindings(c *manifest.Cluster, t *Target) []providers.Finding {
	var fs []providers.Finding
	if t.Store != nil && t.Driver != nil {
		if sub, why := t.Driver.Credentials(t.Conf).PodIdentity, t.Driver.Info().SidecarIdentity; sub != "" && why != "" {
			fs = append(fs, providers.Warnf(t.Field+"."+sub, "use a Secret-based credential (a SAS token or the storage key) for the plugin, or check the plugin's release notes for workload-identity support in its sidecar",
				"%s through the Barman Cloud plugin: %s, so a Job that passes with this identity proves nothing for the sidecar", sub, why))
		}
	}
	if t.Store == nil || t.Store.Spec.InstanceSidecarConfiguration == nil {
		return fs
	}
	for i, e := range t.Store.Spec.InstanceSidecarConfiguration.Env {
		for _, ce := range c.Spec.Env {
			if ce.Name == e.Name && providers.Honoured(e.Name) {
				fs = append(fs, providers.Warnf(fmt.Sprintf("ObjectStore %s: spec.instanceSidecarConfiguration.env[%d]", t.Store.Meta.Name, i), "set the variable in one place only",
					"%s is also set in the Cluster's spec.env: the plugin gives the sidecar the instance container's value, not this one", e.Name))
			}
		}
	}
	return fs
}

// reloadFinding: an in-tree endpointCA is mounted as a file in the instance Pods; CNPG reloads a
// changed Secret there only when it carries the reload label. Credential Secrets are re-read at
// each reconcile and backup, label or not, and the plugin re-reads its Secrets itself: no
// warning for those. The Secret's labels are known when it was read (files, or live: see kube.Load).
func reloadFinding(set *manifest.Set, c *manifest.Cluster, t *Target) []providers.Finding {
	ref := t.Conf.EndpointCA
	if t.Store != nil || ref == nil || ref.Name == "" {
		return nil
	}
	s := set.Secret(c.Meta.Namespace, ref.Name)
	if s == nil {
		return nil
	}
	if _, ok := s.Meta.Labels[ReloadLabel]; ok {
		return nil
	}
	return []providers.Finding{providers.Warnf(t.Field+".endpointCA", fmt.Sprintf("kubectl label secret -n %s %s %s=true", c.Meta.Namespace, ref.Name, ReloadLabel),
		"the Secret %s has no %s label: CNPG mounts endpointCA as a file in the instance Pods, and without the label a rotated CA is only picked up after kubectl cnpg reload (or a restart), so archiving fails once the old certificate is replaced", ref.Name, ReloadLabel)}
}
