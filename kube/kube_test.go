package kube

// The API server of these tests is an in-process httptest server speaking the Kubernetes REST
// protocol to a real dynamic client. (client-go's dynamic/fake would need go.mod to list
// the modules of k8s.io/client-go/testing; a real client also honours contexts, which the fake
// does not.)

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
)

const pluginName = "barman-cloud.cloudnative-pg.io"

// resources served: plural -> group/version and list kind
var served = map[string]struct{ gv, listKind string }{
	"clusters":     {"postgresql.cnpg.io/v1", "ClusterList"},
	"objectstores": {"barmancloud.cnpg.io/v1", "ObjectStoreList"},
	"secrets":      {"v1", "SecretList"},
}

// hook answers one request instead of the store; it returns false to let the store answer.
type hook func(w http.ResponseWriter, r *http.Request) bool

// apiServer is a minimal Kubernetes API server: get and list of clusters, objectstores and
// secrets, with every call recorded as "verb resource ns/name" (list: "list resource ns").
type apiServer struct {
	*httptest.Server
	mu      sync.Mutex
	objects map[string]map[string]any // "resource/ns/name"
	calls   []string
	hooks   map[string]hook // "verb resource name" or "verb resource"
}

func newAPIServer(t *testing.T, objs ...map[string]any) *apiServer {
	t.Helper()
	a := &apiServer{objects: map[string]map[string]any{}, hooks: map[string]hook{}}
	for _, o := range objs {
		a.add(o)
	}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func plural(kind string) string {
	return map[string]string{"Cluster": "clusters", "ObjectStore": "objectstores", "Secret": "secrets"}[kind]
}

func (a *apiServer) add(o map[string]any) {
	md := o["metadata"].(map[string]any)
	a.objects[plural(o["kind"].(string))+"/"+md["namespace"].(string)+"/"+md["name"].(string)] = o
}

func (a *apiServer) on(key string, h hook) { a.mu.Lock(); a.hooks[key] = h; a.mu.Unlock() }

func (a *apiServer) recorded() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func writeStatus(w http.ResponseWriter, se *apierrors.StatusError) {
	st := se.ErrStatus
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	json.NewEncoder(w).Encode(st)
}

func (a *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/api/v1")
	if p == r.URL.Path {
		p = strings.TrimPrefix(p, "/apis/")
		if parts := strings.SplitN(p, "/", 3); len(parts) == 3 {
			p = "/" + parts[2]
		}
	}
	seg := strings.Split(strings.Trim(p, "/"), "/")
	ns, res, name := "", "", ""
	switch {
	case len(seg) >= 3 && seg[0] == "namespaces":
		ns, res = seg[1], seg[2]
		if len(seg) == 4 {
			name = seg[3]
		}
	case len(seg) == 1:
		res = seg[0]
	}
	verb := "list"
	if name != "" {
		verb = "get"
	}
	call := verb + " " + res + " " + ns
	if name != "" {
		call += "/" + name
	}
	a.mu.Lock()
	a.calls = append(a.calls, call)
	h := a.hooks[verb+" "+res+" "+name]
	if h == nil {
		h = a.hooks[verb+" "+res]
	}
	a.mu.Unlock()
	if r.Method != http.MethodGet {
		http.Error(w, "read-only API server", http.StatusMethodNotAllowed)
		return
	}
	if h != nil && h(w, r) {
		return
	}
	sv, ok := served[res]
	if !ok {
		http.NotFound(w, r)
		return
	}
	group, _, _ := strings.Cut(sv.gv, "/")
	if !strings.Contains(sv.gv, "/") {
		group = ""
	}
	w.Header().Set("Content-Type", "application/json")
	a.mu.Lock()
	defer a.mu.Unlock()
	if name != "" {
		o, ok := a.objects[res+"/"+ns+"/"+name]
		if !ok {
			a.mu.Unlock()
			writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Group: group, Resource: res}, name))
			a.mu.Lock()
			return
		}
		json.NewEncoder(w).Encode(o)
		return
	}
	var keys []string
	for k := range a.objects {
		if strings.HasPrefix(k, res+"/") && (ns == "" || strings.HasPrefix(k, res+"/"+ns+"/")) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	items := []any{}
	for _, k := range keys {
		items = append(items, a.objects[k])
	}
	json.NewEncoder(w).Encode(map[string]any{"apiVersion": sv.gv, "kind": sv.listKind, "metadata": map[string]any{"resourceVersion": "1"}, "items": items})
}

// client is a real dynamic client of a.
func (a *apiServer) client(t *testing.T, ns string) *Client {
	t.Helper()
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: a.URL, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return NewForDynamic(dyn, a.URL, ns)
}

func obj(apiVersion, kind, ns, name string, fields map[string]any) map[string]any {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name, "namespace": ns,
		"uid": "0f0f0f0f-0000-0000-0000-" + strings.Repeat("0", 12), "resourceVersion": "42", "creationTimestamp": "2024-01-01T00:00:00Z",
		"managedFields": []any{map[string]any{"manager": "kubectl", "operation": "Apply"}}}}
	for k, v := range fields {
		o[k] = v
	}
	return o
}

func plugin(store string, enabled *bool) map[string]any {
	p := map[string]any{"name": pluginName, "parameters": map[string]any{"barmanObjectName": store}}
	if enabled != nil {
		p["enabled"] = *enabled
	} else {
		p["isWALArchiver"] = true
	}
	return p
}

// pgCluster uses ObjectStore "store" through an enabled plugin entry, "old-store" through a
// disabled one, and "origin-store" through an external cluster.
func pgCluster(ns string) map[string]any {
	off := false
	return obj("postgresql.cnpg.io/v1", "Cluster", ns, "pg", map[string]any{"spec": map[string]any{
		"instances": 3,
		"plugins":   []any{plugin("store", nil), plugin("old-store", &off)},
		"externalClusters": []any{map[string]any{"name": "origin",
			"plugin": map[string]any{"name": pluginName, "parameters": map[string]any{"barmanObjectName": "origin-store", "serverName": "old"}}}},
	}, "status": map[string]any{"currentPrimary": "pg-1", "conditions": []any{map[string]any{"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess"}}}})
}

func objectStore(ns, name, secret string) map[string]any {
	return obj("barmancloud.cnpg.io/v1", "ObjectStore", ns, name, map[string]any{"spec": map[string]any{"configuration": map[string]any{
		"destinationPath": "s3://bucket/" + name,
		"endpointURL":     "http://minio:9000",
		"s3Credentials": map[string]any{
			"accessKeyId":     map[string]any{"name": secret, "key": "ACCESS_KEY_ID"},
			"secretAccessKey": map[string]any{"name": secret, "key": "ACCESS_SECRET_KEY"},
		},
	}}})
}

func secret(ns, name string, data map[string]string) map[string]any {
	d := map[string]any{}
	for k, v := range data {
		d[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	return obj("v1", "Secret", ns, name, map[string]any{"type": "Opaque", "data": d})
}

// world is the cluster of most tests: Clusters pg and other in db, pg in prod, the three
// ObjectStores of db/pg and a Secret.
func world(t *testing.T, extra ...map[string]any) *apiServer {
	return newAPIServer(t, append([]map[string]any{
		pgCluster("db"),
		obj("postgresql.cnpg.io/v1", "Cluster", "db", "other", map[string]any{"spec": map[string]any{"instances": 1}}),
		pgCluster("prod"),
		objectStore("db", "store", "s3-creds"),
		objectStore("db", "old-store", "old-creds"),
		objectStore("db", "origin-store", "s3-creds"),
		secret("db", "s3-creds", map[string]string{"ACCESS_KEY_ID": "AKIAKUBETEST", "ACCESS_SECRET_KEY": "kube-secret-value"}),
	}, extra...)...)
}

func names[T any](xs []T, name func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, name(x))
	}
	sort.Strings(out)
	return out
}

func clusterNames(set *manifest.Set) []string {
	return names(set.Clusters, func(c *manifest.Cluster) string { return c.Meta.Namespace + "/" + c.Meta.Name })
}

func storeNames(set *manifest.Set) []string {
	return names(set.ObjectStores, func(o *manifest.ObjectStore) string { return o.Meta.Namespace + "/" + o.Meta.Name })
}

func TestLoadOneCluster(t *testing.T) {
	t.Parallel()
	api := world(t)
	c := api.client(t, "db")
	if c.Namespace() != "db" {
		t.Errorf("Namespace() = %q", c.Namespace())
	}
	set, err := c.Load(context.Background(), Options{Cluster: "pg"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(clusterNames(set), ","); got != "db/pg" {
		t.Errorf("clusters %s", got)
	}
	if got := strings.Join(storeNames(set), ","); got != "db/origin-store,db/store" {
		t.Errorf("object stores %s", got)
	}
	want := "get clusters db/pg; get objectstores db/origin-store; get objectstores db/store"
	if got := strings.Join(api.recorded(), "; "); got != want {
		t.Errorf("API calls\n got %s\nwant %s (the disabled plugin's ObjectStore must not be read, nor any Secret)", got, want)
	}
	cl := set.Clusters[0]
	if cl.Origin.File != manifest.LivePrefix+"Cluster db/pg" || len(cl.Issues) != 0 || len(cl.Spec.Plugins) != 2 {
		t.Errorf("cluster %+v", cl)
	}
	if cl.Status == nil || cl.Status.CurrentPrimary != "pg-1" || len(cl.Status.Conditions) != 1 {
		t.Errorf("the live status is read: %+v", cl.Status)
	}
	if st := set.ObjectStore("db", "store"); st == nil || st.Spec.Configuration.DestinationPath != "s3://bucket/store" || len(st.Issues) != 0 {
		t.Errorf("store %+v", st)
	}
	if len(set.Problems) != 0 || len(set.Secrets) != 0 {
		t.Errorf("problems %v, secrets %v", set.Problems, set.Secrets)
	}
}

func TestLoadNamespace(t *testing.T) {
	t.Parallel()
	api := world(t)
	set, err := api.client(t, "db").Load(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(clusterNames(set), ","); got != "db/other,db/pg" {
		t.Errorf("clusters %s", got)
	}
	want := "list clusters db; get objectstores db/origin-store; get objectstores db/store"
	if got := strings.Join(api.recorded(), "; "); got != want {
		t.Errorf("API calls\n got %s\nwant %s", got, want)
	}
}

func TestLoadAllNamespaces(t *testing.T) {
	t.Parallel()
	api := world(t)
	set, err := api.client(t, "db").Load(context.Background(), Options{AllNamespaces: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(clusterNames(set), ","); got != "db/other,db/pg,prod/pg" {
		t.Errorf("clusters %s", got)
	}
	// prod/pg's ObjectStores do not exist: not found is left to the wiring check, not a problem
	if got := strings.Join(storeNames(set), ","); got != "db/origin-store,db/store" || len(set.Problems) != 0 {
		t.Errorf("object stores %s, problems %v", got, set.Problems)
	}
	want := "list clusters ; get objectstores db/origin-store; get objectstores db/store; get objectstores prod/origin-store; get objectstores prod/store"
	if got := strings.Join(api.recorded(), "; "); got != want {
		t.Errorf("API calls\n got %s\nwant %s", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	clusters := schema.GroupResource{Group: "postgresql.cnpg.io", Resource: "clusters"}
	status := func(se *apierrors.StatusError) hook {
		return func(w http.ResponseWriter, _ *http.Request) bool { writeStatus(w, se); return true }
	}
	cases := []struct {
		name string
		o    Options
		hook string
		h    hook
		want string
	}{
		{"missing cluster", Options{Cluster: "nope"}, "", nil, `clusters.postgresql.cnpg.io "nope" not found in namespace db`},
		{"forbidden get", Options{Cluster: "pg"}, "get clusters",
			status(apierrors.NewForbidden(clusters, "pg", errors.New(`User "alice" cannot get resource "clusters" in API group "postgresql.cnpg.io" in the namespace "db"`))),
			`forbidden: the identity may not get clusters.postgresql.cnpg.io "pg" in namespace db (RBAC): clusters.postgresql.cnpg.io "pg" is forbidden: User "alice" cannot get resource "clusters" in API group "postgresql.cnpg.io" in the namespace "db"`},
		{"forbidden list", Options{AllNamespaces: true}, "list clusters",
			status(apierrors.NewForbidden(clusters, "", errors.New("no"))),
			`forbidden: the identity may not list clusters.postgresql.cnpg.io (RBAC): clusters.postgresql.cnpg.io is forbidden: no`},
		{"CRD not installed", Options{}, "list clusters",
			func(w http.ResponseWriter, r *http.Request) bool { http.NotFound(w, r); return true },
			"the API server does not serve clusters.postgresql.cnpg.io: is the CRD installed (CloudNativePG / Barman Cloud plugin)?"},
		{"unauthorized", Options{Cluster: "pg"}, "get clusters",
			status(apierrors.NewUnauthorized("token expired")),
			"unauthorized: the Kubernetes API server rejected the credentials of the kubeconfig or ServiceAccount token"},
		{"server error", Options{Cluster: "pg"}, "get clusters",
			status(apierrors.NewInternalError(errors.New("etcd is\nunhappy"))),
			`cannot get clusters.postgresql.cnpg.io "pg" in namespace db: Internal error occurred: etcd is unhappy`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			api := world(t)
			if c.h != nil {
				api.on(c.hook, c.h)
			}
			set, err := api.client(t, "db").Load(context.Background(), c.o)
			var ke *Error
			if set != nil || !errors.As(err, &ke) {
				t.Fatalf("got %v, %T %v; want a *kube.Error", set, err, err)
			}
			if ke.Msg != c.want {
				t.Errorf("\n got %s\nwant %s", ke.Msg, c.want)
			}
		})
	}
}

func TestLoadObjectStoreForbidden(t *testing.T) {
	t.Parallel()
	api := world(t)
	api.on("get objectstores store", func(w http.ResponseWriter, _ *http.Request) bool {
		writeStatus(w, apierrors.NewForbidden(schema.GroupResource{Group: "barmancloud.cnpg.io", Resource: "objectstores"}, "store",
			errors.New(`User "system:serviceaccount:db:pg" cannot get resource "objectstores" in API group "barmancloud.cnpg.io" in the namespace "db"`)))
		return true
	})
	set, err := api.client(t, "db").Load(context.Background(), Options{Cluster: "pg"})
	if err != nil {
		t.Fatalf("an unreadable ObjectStore must not stop the run: %v", err)
	}
	if got := strings.Join(storeNames(set), ","); got != "db/origin-store" {
		t.Errorf("object stores %s", got)
	}
	p := set.Problems["ObjectStore db/store"]
	want := `forbidden: the identity may not get objectstores.barmancloud.cnpg.io "store" in namespace db (RBAC): objectstores.barmancloud.cnpg.io "store" is forbidden: User "system:serviceaccount:db:pg" cannot get resource "objectstores"`
	if !strings.HasPrefix(p, want) || len(set.Problems) != 1 {
		t.Errorf("problems %v\nwant ObjectStore db/store: %s…", set.Problems, want)
	}
}

func TestLoadStrictDecoding(t *testing.T) {
	t.Parallel()
	bad := obj("barmancloud.cnpg.io/v1", "ObjectStore", "db", "store", map[string]any{"spec": map[string]any{"configuration": map[string]any{
		"destinationPath": "s3://bucket/x", "endpointUrl": "http://minio:9000",
	}}})
	api := newAPIServer(t, pgCluster("db"), bad)
	set, err := api.client(t, "db").Load(context.Background(), Options{Cluster: "pg"})
	if err != nil {
		t.Fatal(err)
	}
	st := set.ObjectStore("db", "store")
	if st == nil || len(st.Issues) != 1 || st.Issues[0].Path != "spec.configuration.endpointUrl" {
		t.Fatalf("a live object goes through the strict decoder: %+v", st)
	}
}

func TestSecretsOneGetPerSecret(t *testing.T) {
	t.Parallel()
	api := world(t, secret("prod", "s3-creds", map[string]string{"ACCESS_KEY_ID": "AKIAPROD"}))
	c := api.client(t, "db")
	db := c.Secrets("db")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		id, err := db(ctx, "s3-creds", "ACCESS_KEY_ID")
		if err != nil || string(id) != "AKIAKUBETEST" {
			t.Fatalf("ACCESS_KEY_ID: %q %v", id, err)
		}
		sec, err := db(ctx, "s3-creds", "ACCESS_SECRET_KEY")
		if err != nil || string(sec) != "kube-secret-value" {
			t.Fatalf("ACCESS_SECRET_KEY: %q %v", sec, err)
		}
	}
	// concurrent readers of another Secret share one GET too
	var wg sync.WaitGroup
	prod := c.Secrets("prod")
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := prod(ctx, "s3-creds", "ACCESS_KEY_ID"); err != nil || string(v) != "AKIAPROD" {
				t.Errorf("prod: %q %v", v, err)
			}
		}()
	}
	wg.Wait()
	want := "get secrets db/s3-creds; get secrets prod/s3-creds"
	if got := strings.Join(api.recorded(), "; "); got != want {
		t.Errorf("API calls\n got %s\nwant %s", got, want)
	}
}

func TestSecretsErrors(t *testing.T) {
	t.Parallel()
	api := world(t, obj("v1", "Secret", "db", "garbled", map[string]any{"data": map[string]any{"k": "%%%not-base64-kube-secret%%%"}}))
	api.on("get secrets locked", func(w http.ResponseWriter, _ *http.Request) bool {
		writeStatus(w, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "locked", errors.New("RBAC: no")))
		return true
	})
	look := api.client(t, "db").Secrets("db")
	ctx := context.Background()
	cases := []struct{ name, key, want string }{
		{"x", "k", "Secret db/x not found"},
		{"x", "other", "Secret db/x not found"},
		{"s3-creds", "k", `Secret db/s3-creds has no key "k"`},
		{"locked", "k", `forbidden: the identity may not get secrets "locked" in namespace db (RBAC): secrets "locked" is forbidden: RBAC: no`},
		{"garbled", "k", "value is not valid base64"},
	}
	for _, c := range cases {
		v, err := look(ctx, c.name, c.key)
		if v != nil || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s/%s: %q, %v; want %q", c.name, c.key, v, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "not-base64-kube-secret") {
			t.Errorf("the error quotes the Secret's value: %v", err)
		}
	}
	gets := 0
	for _, c := range api.recorded() {
		if c == "get secrets db/x" {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("a missing Secret was read %d times, want once", gets)
	}
}

// hang makes every request wait until it is cancelled.
func hang(w http.ResponseWriter, r *http.Request) bool {
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
	return true
}

func TestSecretsContext(t *testing.T) {
	t.Parallel()
	api := world(t)
	api.on("get secrets", hang)
	look := api.client(t, "db").Secrets("db")

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	v, err := look(cancelled, "s3-creds", "ACCESS_KEY_ID")
	if err == nil || v != nil {
		t.Fatalf("cancelled context: %q %v", v, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a cancelled read took %s", d)
	}
	if !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %q does not say why", err)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	if _, err := look(short, "other", "k"); err == nil {
		t.Fatal("a read past the deadline succeeded")
	} else if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the read outlived its deadline by %s: %v", d, err)
	}
}

func TestLoadUnreachable(t *testing.T) {
	t.Parallel()
	api := world(t)
	api.on("get clusters", hang)
	c := api.client(t, "db")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Load(ctx, Options{Cluster: "pg"})
	var ke *Error
	if !errors.As(err, &ke) || !strings.HasPrefix(ke.Msg, "cannot reach the Kubernetes API server at "+api.URL+": ") {
		t.Errorf("got %v", err)
	}

	api.Close()
	_, err = c.Load(context.Background(), Options{Cluster: "pg"})
	if !errors.As(err, &ke) || !strings.HasPrefix(ke.Msg, "cannot reach the Kubernetes API server at "+api.URL+": ") || !strings.Contains(ke.Msg, "connection refused") {
		t.Errorf("server gone: %v", err)
	}
}
