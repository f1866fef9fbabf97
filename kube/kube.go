// Package kube reads Clusters, ObjectStores and the referenced Secrets from a live Kubernetes
// cluster with client-go's dynamic client (no CNPG Go modules, no typed clientset). Objects go
// through the same strict decoder as files.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Resources read.
var (
	ClustersGVR     = schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: "clusters"}
	ObjectStoresGVR = schema.GroupVersionResource{Group: "barmancloud.cnpg.io", Version: "v1", Resource: "objectstores"}
	SecretsGVR      = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	ConfigMapsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	BackupsGVR      = schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: "backups"}
)

// Options select the cluster and the Clusters to read (kubectl's connection flags).
type Options struct {
	Kubeconfig    string // --kubeconfig; KUBECONFIG and ~/.kube/config otherwise; in a Pod, the in-cluster config
	Context       string // --context
	Namespace     string // -n; "" = the context's namespace
	AllNamespaces bool   // -A
	Cluster       string // --cluster NAME
	// Timeout bounds every API request (--timeout; <= 0: 60 s). Secret reads are further bounded
	// by the context of the target that needs them.
	Timeout time.Duration
}

// Error is an API problem: it stops the run (exit 2), or, reading a Secret, fails the target's
// credentials check with Fix as the remediation.
type Error struct{ Msg, Fix string }

func (e *Error) Error() string { return e.Msg }

// Remediation is what to do about it ("" when nothing specific).
func (e *Error) Remediation() string { return e.Fix }

// Client reads from one API server.
type Client struct {
	dyn  dynamic.Interface
	host string
	ns   string // the namespace in effect

	mu      sync.Mutex
	secrets map[string]*secretResult
}

type secretResult struct {
	mu   sync.Mutex // held during the GET: concurrent readers of one Secret wait for it
	done bool       // the answer is final (a GET cut short by its caller's context is not)
	data map[string][]byte
	err  error
}

// New connects using the kubeconfig (or the in-cluster config in a Pod).
func New(o Options) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, &Error{Msg: "no Kubernetes connection: " + oneLine(err.Error()) + " (use --kubeconfig or --context, or -f for manifest files)"}
	}
	ns := o.Namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	cfg.UserAgent = "cnpg-preflight"
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = o.Timeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, &Error{Msg: "Kubernetes client: " + oneLine(err.Error())}
	}
	return NewForDynamic(dyn, cfg.Host, ns), nil
}

// NewForDynamic reads through an existing dynamic client (host names the API server in
// messages; ns is the namespace in effect).
func NewForDynamic(dyn dynamic.Interface, host, ns string) *Client {
	return &Client{dyn: dyn, host: host, ns: ns, secrets: map[string]*secretResult{}}
}

// Namespace is the namespace in effect (-n, or the context's).
func (c *Client) Namespace() string { return c.ns }

var oneLine = text.OneLine

// apiError turns an API error into one precise line.
func (c *Client) apiError(verb, resource, ns, name string, err error) error {
	what := resource
	if name != "" {
		what += " " + fmt.Sprintf("%q", name)
	}
	where := ""
	if ns != "" {
		where = " in namespace " + ns
	}
	switch {
	case apierrors.IsForbidden(err):
		return &Error{Msg: fmt.Sprintf("forbidden: the identity may not %s %s%s (RBAC): %s", verb, what, where, oneLine(statusMessage(err)))}
	case apierrors.IsUnauthorized(err):
		return &Error{Msg: "unauthorized: the Kubernetes API server rejected the credentials of the kubeconfig or ServiceAccount token"}
	case apierrors.IsNotFound(err):
		if strings.Contains(statusMessage(err), "the server could not find the requested resource") {
			return &Error{Msg: fmt.Sprintf("the API server does not serve %s: is the CRD installed (CloudNativePG / Barman Cloud plugin)?", resource)}
		}
		return &Error{Msg: fmt.Sprintf("%s not found%s", strings.TrimSpace(what), where)}
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return &Error{Msg: fmt.Sprintf("cannot reach the Kubernetes API server at %s: %s", c.host, oneLine(rootCause(err)))}
	}
	return &Error{Msg: fmt.Sprintf("cannot %s %s%s: %s", verb, what, where, oneLine(err.Error()))}
}

func statusMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Message
	}
	return err.Error()
}

func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// Load reads the selected Clusters and the ObjectStores they reference into a Set.
func (c *Client) Load(ctx context.Context, o Options) (*manifest.Set, error) {
	set := manifest.NewSet()
	var clusters []unstructured.Unstructured
	switch {
	case o.Cluster != "":
		u, err := c.dyn.Resource(ClustersGVR).Namespace(c.ns).Get(ctx, o.Cluster, metav1.GetOptions{})
		if err != nil {
			return nil, c.apiError("get", "clusters.postgresql.cnpg.io", c.ns, o.Cluster, err)
		}
		clusters = append(clusters, *u)
	default:
		ns := c.ns
		if o.AllNamespaces {
			ns = ""
		}
		l, err := c.dyn.Resource(ClustersGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, c.apiError("list", "clusters.postgresql.cnpg.io", ns, "", err)
		}
		clusters = l.Items
	}
	stores := map[string]bool{}
	for i := range clusters {
		u := &clusters[i]
		if err := add(set, u); err != nil {
			return nil, err
		}
		for _, name := range set.Clusters[len(set.Clusters)-1].ObjectStoreNames() {
			stores[u.GetNamespace()+"/"+name] = true
		}
	}
	keys := make([]string, 0, len(stores))
	for k := range stores {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		u, err := c.dyn.Resource(ObjectStoresGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue // the plugin wiring check names it
		case err != nil:
			set.Problems["ObjectStore "+k] = c.apiError("get", "objectstores.barmancloud.cnpg.io", ns, name, err).Error()
			continue
		}
		if err := add(set, u); err != nil {
			return nil, err
		}
	}
	c.loadCASecrets(ctx, set)
	// A Cluster bootstrapped from a Backup object: read that Backup (get by name).
	for _, cl := range set.Clusters {
		b := cl.Spec.Bootstrap
		if b == nil || b.Recovery == nil || b.Recovery.Backup == nil || b.Recovery.Backup.Name == "" || set.Backup(cl.Meta.Namespace, b.Recovery.Backup.Name) != nil {
			continue
		}
		ns, name := cl.Meta.Namespace, b.Recovery.Backup.Name
		u, err := c.dyn.Resource(BackupsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && !strings.Contains(statusMessage(err), "could not find the requested resource"):
			continue // named by the target
		case err != nil:
			set.Problems["Backup "+ns+"/"+name] = c.apiError("get", "backups.postgresql.cnpg.io", ns, name, err).Error()
			continue
		}
		if err := add(set, u); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// loadCASecrets reads the Secrets the Clusters' in-tree endpointCA names (get by name, already
// in the Job's Role) into the set: their labels say whether CNPG reloads a rotated CA. Best
// effort: a Secret that cannot be read is named by the credentials check.
func (c *Client) loadCASecrets(ctx context.Context, set *manifest.Set) {
	for _, cl := range set.Clusters {
		var confs []*manifest.BarmanObjectStore
		if b := cl.Spec.Backup; b != nil && b.BarmanObjectStore != nil {
			confs = append(confs, b.BarmanObjectStore)
		}
		for _, ec := range cl.Spec.ExternalClusters {
			if ec.BarmanObjectStore != nil {
				confs = append(confs, ec.BarmanObjectStore)
			}
		}
		ns := cl.Meta.Namespace
		for _, conf := range confs {
			ref := conf.EndpointCA
			if ref == nil || ref.Name == "" || set.Secret(ns, ref.Name) != nil {
				continue
			}
			s, err := c.getSecretObject(ctx, ns, ref.Name)
			if err != nil {
				continue
			}
			set.Secrets[ns+"/"+ref.Name] = s
			c.mu.Lock()
			c.secrets[ns+"/"+ref.Name] = &secretResult{done: true, data: s.Data}
			c.mu.Unlock()
		}
	}
}

// add feeds one live object through the file decoder (same strictness, same messages).
func add(set *manifest.Set, u *unstructured.Unstructured) error {
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return set.Add(manifest.LivePrefix+u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName(), b, u.GetNamespace())
}

// Forget drops the Secrets read so far: the next lookups read them again (serve, each round).
func (c *Client) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets = map[string]*secretResult{}
}

// SecretObjects returns a lookup of whole Secrets (envFrom, valueFrom), sharing the cache of
// Secrets: each is read once, with a get by name.
func (c *Client) SecretObjects(namespace string) func(ctx context.Context, name string) (map[string][]byte, error) {
	return func(ctx context.Context, name string) (map[string][]byte, error) {
		return c.cached(ctx, "Secret", namespace, name, c.getSecret)
	}
}

// ConfigMaps returns a lookup of the ConfigMaps a backup client's environment references: one
// get by name each (never a list).
func (c *Client) ConfigMaps(namespace string) func(ctx context.Context, name string) (map[string][]byte, error) {
	return func(ctx context.Context, name string) (map[string][]byte, error) {
		return c.cached(ctx, "ConfigMap", namespace, name, c.getConfigMap)
	}
}

// cached reads an object once (concurrent readers wait for the same GET).
func (c *Client) cached(ctx context.Context, kind, namespace, name string, get func(context.Context, string, string) (map[string][]byte, error)) (map[string][]byte, error) {
	key := namespace + "/" + name
	if kind != "Secret" {
		key = kind + " " + key
	}
	c.mu.Lock()
	r := c.secrets[key]
	if r == nil {
		r = &secretResult{}
		c.secrets[key] = r
	}
	c.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.data, r.err = get(ctx, namespace, name)
		r.done = ctx.Err() == nil
	}
	return r.data, r.err
}

// getConfigMap reads one ConfigMap through the strict decoder.
func (c *Client) getConfigMap(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	u, err := c.dyn.Resource(ConfigMapsGVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("ConfigMap %s/%s not found", namespace, name)
		}
		ae := c.apiError("get", "configmaps", namespace, name, err)
		if e, ok := ae.(*Error); ok && apierrors.IsForbidden(err) {
			e.Fix = fmt.Sprintf("let the identity get ConfigMap %q in namespace %s: add it to the resourceNames of the Role's configmaps rule "+
				"(re-run cnpg-preflight job and kubectl apply its output)", name, namespace)
		}
		return nil, ae
	}
	set := manifest.NewSet()
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	b, _ := json.Marshal(u.Object)
	if err := set.Add(manifest.LivePrefix+"ConfigMap "+namespace+"/"+name, b, namespace); err != nil {
		return nil, err
	}
	if cm := set.ConfigMap(namespace, name); cm != nil {
		return cm.Data, nil
	}
	return nil, fmt.Errorf("ConfigMap %s/%s not found", namespace, name)
}

// Secrets returns a lookup that GETs each referenced Secret once (never a list of all Secrets),
// bounded by the context of the target that needs it; a GET cut short by that context is tried
// again by the next target.
func (c *Client) Secrets(namespace string) providers.SecretLookup {
	return func(ctx context.Context, name, key string) ([]byte, error) {
		data, err := c.cached(ctx, "Secret", namespace, name, c.getSecret)
		if err != nil {
			return nil, err
		}
		v, ok := data[key]
		if !ok {
			return nil, providers.SecretKeyMissing(namespace, name, key)
		}
		return v, nil
	}
}

// getSecret reads one Secret through the strict decoder.
func (c *Client) getSecret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	s, err := c.getSecretObject(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}

// getSecretObject reads one Secret (data and metadata) through the strict decoder.
func (c *Client) getSecretObject(ctx context.Context, namespace, name string) (*manifest.Secret, error) {
	u, err := c.dyn.Resource(SecretsGVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, providers.SecretNotFound(namespace, name)
		}
		ae := c.apiError("get", "secrets", namespace, name, err)
		if e, ok := ae.(*Error); ok && apierrors.IsForbidden(err) {
			e.Fix = fmt.Sprintf("let the identity get Secret %q in namespace %s: add it to the resourceNames of the Role's secrets rule "+
				"(re-run cnpg-preflight job, or job --serve, and kubectl apply its output)", name, namespace)
		}
		return nil, ae
	}
	set := manifest.NewSet()
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	b, _ := json.Marshal(u.Object)
	if err := set.Add(manifest.LivePrefix+"Secret "+namespace+"/"+name, b, namespace); err != nil {
		return nil, err
	}
	if s := set.Secret(namespace, name); s != nil {
		return s, nil
	}
	return nil, providers.SecretNotFound(namespace, name)
}
