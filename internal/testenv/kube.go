package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Kube is the real API server started by scripts/servers.sh, with an admin identity.
type Kube struct {
	Kubeconfig string
	Server     string
	CA         string
	cfg        *rest.Config
	Dyn        dynamic.Interface
}

var gvrs = map[string]schema.GroupVersionResource{
	"Namespace":                {Version: "v1", Resource: "namespaces"},
	"Secret":                   {Version: "v1", Resource: "secrets"},
	"ServiceAccount":           {Version: "v1", Resource: "serviceaccounts"},
	"Role":                     {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	"Job":                      {Group: "batch", Version: "v1", Resource: "jobs"},
	"CronJob":                  {Group: "batch", Version: "v1", Resource: "cronjobs"},
	"Cluster":                  {Group: "postgresql.cnpg.io", Version: "v1", Resource: "clusters"},
	"ObjectStore":              {Group: "barmancloud.cnpg.io", Version: "v1", Resource: "objectstores"},
	"CustomResourceDefinition": {Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	"Deployment":               {Group: "apps", Version: "v1", Resource: "deployments"},
	"Service":                  {Version: "v1", Resource: "services"},
	"Event":                    {Version: "v1", Resource: "events"},
	"ConfigMap":                {Version: "v1", Resource: "configmaps"},
	"Backup":                   {Group: "postgresql.cnpg.io", Version: "v1", Resource: "backups"},
}

var crdOnce sync.Once

// LoadKube connects to the API server and installs the CRDs once.
func LoadKube(t testing.TB, srv *Servers) *Kube {
	t.Helper()
	kc := srv.Get("KUBE_ADMIN_KUBECONFIG")
	if kc == "" {
		if os.Getenv("CNPG_PREFLIGHT_INTEGRATION") == "1" {
			t.Fatal("no kube-apiserver in servers.env: run scripts/build-kube.sh and scripts/servers.sh start")
		}
		t.Skip("no kube-apiserver")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	k := &Kube{Kubeconfig: kc, Server: srv.Get("KUBE_SERVER"), CA: srv.Get("TLS_CA"), cfg: cfg}
	if k.Dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	crdOnce.Do(func() {
		_, file := callerDir()
		for _, f := range []string{"clusters.yaml", "objectstores.yaml", "backups.yaml"} {
			b, err := os.ReadFile(filepath.Join(file, "..", "..", "testdata", "crds", f))
			if err != nil {
				t.Fatal(err)
			}
			k.Apply(t, "", string(b))
		}
		for _, name := range []string{"clusters.postgresql.cnpg.io", "objectstores.barmancloud.cnpg.io", "backups.postgresql.cnpg.io"} {
			k.waitEstablished(t, name)
		}
	})
	return k
}

func (k *Kube) waitEstablished(t testing.TB, name string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		u, err := k.Dyn.Resource(gvrs["CustomResourceDefinition"]).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("CRD %s not established", name)
}

// Namespace creates a fresh namespace (never deleted: no controller-manager finishes deletions).
func (k *Kube) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := Unique(prefix)
	k.Apply(t, "", "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n")
	return ns
}

// Apply creates (or replaces) every object of a multi-document YAML; objects without a namespace
// go to ns.
func (k *Kube) Apply(t testing.TB, ns, doc string) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		gvr, ok := gvrs[u.GetKind()]
		if !ok {
			t.Fatalf("apply: unknown kind %s", u.GetKind())
		}
		var ri dynamic.ResourceInterface = k.Dyn.Resource(gvr)
		if u.GetKind() != "Namespace" && u.GetKind() != "CustomResourceDefinition" {
			if u.GetNamespace() == "" {
				u.SetNamespace(ns)
			}
			ri = k.Dyn.Resource(gvr).Namespace(u.GetNamespace())
		}
		_, err = ri.Create(context.Background(), u, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, gerr := ri.Get(context.Background(), u.GetName(), metav1.GetOptions{})
			if gerr == nil {
				u.SetResourceVersion(cur.GetResourceVersion())
				_, err = ri.Update(context.Background(), u, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// Token mints a ServiceAccount token through the TokenRequest API.
func (k *Kube) Token(t testing.TB, ns, sa string) string {
	t.Helper()
	req := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": int64(3600)}}}
	req.SetName(sa) // the dynamic client puts it in the subresource path
	out, err := k.Dyn.Resource(gvrs["ServiceAccount"]).Namespace(ns).Create(context.Background(), req, metav1.CreateOptions{}, "token")
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	tok, _, _ := unstructured.NestedString(out.Object, "status", "token")
	return tok
}

// TokenKubeconfig writes a token-only kubeconfig (a client certificate would win over the token).
func (k *Kube) TokenKubeconfig(t testing.TB, token, ns string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: %q, certificate-authority: %q}\nusers:\n- name: sa\n  user: {token: %q}\ncontexts:\n- name: c\n  context: {cluster: c, user: sa, namespace: %s}\ncurrent-context: c\n", k.Server, k.CA, token, ns)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// GetJSON returns an object as the API server stores it, as compact JSON (kind: its Kind).
func (k *Kube) GetJSON(t testing.TB, ns, kind, name string) string {
	t.Helper()
	gvr, ok := gvrs[kind]
	if !ok {
		t.Fatalf("get: unknown kind %s", kind)
	}
	u, err := k.Dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s: %v", kind, name, err)
	}
	b, _ := json.Marshal(u.Object)
	return string(b)
}

// Get reads one object (the admin identity).
func (k *Kube) Get(t testing.TB, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := k.Dyn.Resource(gvrs[kind]).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return u
}

// DescribeEvents lists the Events of an object as `kubectl describe` finds them: core/v1 Events
// selected by the regarding object's name, namespace, kind and uid.
func (k *Kube) DescribeEvents(t testing.TB, obj *unstructured.Unstructured) []unstructured.Unstructured {
	t.Helper()
	sel := fmt.Sprintf("involvedObject.name=%s,involvedObject.namespace=%s,involvedObject.kind=%s,involvedObject.uid=%s", obj.GetName(), obj.GetNamespace(), obj.GetKind(), obj.GetUID())
	l, err := k.Dyn.Resource(gvrs["Event"]).Namespace(obj.GetNamespace()).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatalf("events of %s: %v", obj.GetName(), err)
	}
	return l.Items
}
