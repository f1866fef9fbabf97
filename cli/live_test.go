package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/cnpg-preflight/cnpg-preflight/kube"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// liveDyn is an in-memory dynamic client: Get and List only, every call recorded as
// "verb resource ns/name". (client-go's dynamic/fake would need go.mod changes.)
type liveDyn struct {
	mu      sync.Mutex
	objects map[string]map[string]any // "resource/ns/name"
	errs    map[string]error          // "resource/ns/name" -> error of its Get
	calls   []string
}

func (d *liveDyn) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return &liveRes{d: d, gvr: gvr}
}

func (d *liveDyn) recorded() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// liveRes implements Get, List and Namespace; any other method panics (nil embedded interface).
type liveRes struct {
	dynamic.NamespaceableResourceInterface
	d   *liveDyn
	gvr schema.GroupVersionResource
	ns  string
}

func (r *liveRes) Namespace(ns string) dynamic.ResourceInterface {
	c := *r
	c.ns = ns
	return &c
}

func (r *liveRes) Get(ctx context.Context, name string, _ metav1.GetOptions, _ ...string) (*unstructured.Unstructured, error) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	key := r.gvr.Resource + "/" + r.ns + "/" + name
	r.d.calls = append(r.d.calls, "get "+r.gvr.Resource+" "+r.ns+"/"+name)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := r.d.errs[key]; err != nil {
		return nil, err
	}
	o, ok := r.d.objects[key]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: r.gvr.Group, Resource: r.gvr.Resource}, name)
	}
	return &unstructured.Unstructured{Object: deepCopy(o)}, nil
}

func (r *liveRes) List(ctx context.Context, _ metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.d.calls = append(r.d.calls, "list "+r.gvr.Resource+" "+r.ns)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &unstructured.UnstructuredList{}
	for k, o := range r.d.objects {
		if strings.HasPrefix(k, r.gvr.Resource+"/"+r.ns+"/") || (r.ns == "" && strings.HasPrefix(k, r.gvr.Resource+"/")) {
			l.Items = append(l.Items, unstructured.Unstructured{Object: deepCopy(o)})
		}
	}
	return l, nil
}

func deepCopy(o map[string]any) map[string]any {
	b, _ := json.Marshal(o)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

const liveCanary = "cli-live-CANARY-secret"

func liveObj(apiVersion, kind, name string, fields map[string]any) map[string]any {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name, "namespace": "db", "uid": "1234", "resourceVersion": "7"}}
	for k, v := range fields {
		o[k] = v
	}
	return o
}

func liveStore(name, dest, secret, regionSecret string) map[string]any {
	creds := map[string]any{
		"accessKeyId":     map[string]any{"name": secret, "key": "ACCESS_KEY_ID"},
		"secretAccessKey": map[string]any{"name": secret, "key": "ACCESS_SECRET_KEY"},
	}
	if regionSecret != "" {
		creds["region"] = map[string]any{"name": regionSecret, "key": "REGION"}
	}
	return liveObj("barmancloud.cnpg.io/v1", "ObjectStore", name, map[string]any{"spec": map[string]any{"configuration": map[string]any{
		"destinationPath": dest, "endpointURL": "http://minio.db.svc:9000", "s3Credentials": creds,
	}}})
}

func liveSecret(name string, data map[string]string) map[string]any {
	d := map[string]any{}
	for k, v := range data {
		d[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	return liveObj("v1", "Secret", name, map[string]any{"data": d})
}

// newLiveDyn is namespace db: Cluster pg archiving to ObjectStore store through the plugin, with a
// disabled plugin entry naming old-store (whose Secret old-creds must never be named or read).
func newLiveDyn() *liveDyn {
	objs := []map[string]any{
		liveObj("postgresql.cnpg.io/v1", "Cluster", "pg", map[string]any{"spec": map[string]any{
			"instances": 3,
			"plugins": []any{
				map[string]any{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true, "parameters": map[string]any{"barmanObjectName": "store"}},
				map[string]any{"name": "barman-cloud.cloudnative-pg.io", "enabled": false, "parameters": map[string]any{"barmanObjectName": "old-store"}},
			},
		}}),
		liveStore("store", "s3://bucket/prefix", "s3-creds", "s3-region"),
		liveStore("old-store", "s3://old/prefix", "old-creds", ""),
		liveSecret("s3-creds", map[string]string{"ACCESS_KEY_ID": "AKIALIVETEST", "ACCESS_SECRET_KEY": liveCanary}),
		liveSecret("s3-region", map[string]string{"REGION": "eu-west-1"}),
		liveSecret("old-creds", map[string]string{"ACCESS_KEY_ID": "AKIAOLD", "ACCESS_SECRET_KEY": "old"}),
	}
	d := &liveDyn{objects: map[string]map[string]any{}, errs: map[string]error{}}
	for _, o := range objs {
		res := map[string]string{"Cluster": "clusters", "ObjectStore": "objectstores", "Secret": "secrets"}[o["kind"].(string)]
		d.objects[res+"/db/"+o["metadata"].(map[string]any)["name"].(string)] = o
	}
	return d
}

// runLive runs args in-process against dyn through the Factory's Live hook.
func runLive(t *testing.T, dyn *liveDyn, streams IOStreams, args ...string) (code int, stdout, stderr string, opts []kube.Options) {
	t.Helper()
	var out, errb bytes.Buffer
	streams.In, streams.Out, streams.ErrOut = strings.NewReader(""), &out, &errb
	f := NewFactory(&streams)
	var mu sync.Mutex
	f.Live = func(o kube.Options) (Live, error) {
		mu.Lock()
		opts = append(opts, o)
		mu.Unlock()
		return kube.NewForDynamic(dyn, "https://test", "db"), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = MainContext(ctx, f, args)
	stdout, stderr = out.String(), errb.String()
	for _, s := range []string{liveCanary, base64.StdEncoding.EncodeToString([]byte(liveCanary)), "AKIALIVETEST"} {
		if strings.Contains(stdout+stderr, s) {
			t.Errorf("output leaks a Secret value (%s…)", s[:4])
		}
	}
	return code, stdout, stderr, opts
}

func TestLiveCheckOfflineJSON(t *testing.T) {
	t.Parallel()
	dyn := newLiveDyn()
	code, stdout, stderr, opts := runLive(t, dyn, IOStreams{}, "check", "--cluster", "pg", "-n", "db", "--offline", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	if len(opts) != 1 || opts[0].Cluster != "pg" || opts[0].Namespace != "db" || opts[0].AllNamespaces || opts[0].Timeout != 60*time.Second {
		t.Errorf("Live got options %+v", opts)
	}
	var m report.Matrix
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if m.SchemaVersion != report.SchemaVersion || len(m.Targets) != 1 {
		t.Fatalf("matrix %+v", m)
	}
	tg := m.Targets[0]
	if tg.ID != "db/pg/backup" || tg.Role != "backup" || tg.Provider != "s3" || tg.DestinationPath != "s3://bucket/prefix" || tg.ServerName != "pg" ||
		tg.Cluster != (report.ClusterRef{Namespace: "db", Name: "pg"}) || tg.Requests != 0 {
		t.Errorf("target %+v", tg)
	}
	want := map[string]struct {
		status report.Status
		msg    string
	}{
		"config":      {report.Pass, `objects go to bucket "bucket" under "prefix/pg/"`},
		"credentials": {report.Pass, "resolved access key AKIA******** (--offline)"},
	}
	for _, c := range tg.Checks {
		w, ok := want[c.ID]
		switch {
		case ok && (c.Status != w.status || c.Message != w.msg):
			t.Errorf("%s: %s %q, want %s %q", c.ID, c.Status, c.Message, w.status, w.msg)
		case c.ID == "endpoint" && (c.Status != report.Skip || c.Message != "skipped: --offline"):
			t.Errorf("%s: %s %q, want skipped (--offline)", c.ID, c.Status, c.Message)
		case !ok && (c.Status != report.Skip || !strings.HasPrefix(c.Message, "skipped: ")):
			t.Errorf("%s: %s %q, want skipped", c.ID, c.Status, c.Message)
		}
		delete(want, c.ID)
	}
	if len(want) > 0 {
		t.Errorf("checks missing: %v", want)
	}
	if m.Summary.Targets != 1 || m.Summary.Pass != 2 || m.Summary.Fail != 0 || m.Summary.Skip != len(tg.Checks)-2 {
		t.Errorf("summary %+v", m.Summary)
	}
	wantCalls := "get clusters db/pg; get objectstores db/store; get secrets db/s3-creds; get secrets db/s3-region"
	if got := strings.Join(dyn.recorded(), "; "); got != wantCalls {
		t.Errorf("API calls\n got %s\nwant %s", got, wantCalls)
	}
}

func TestLiveCheckForbiddenObjectStore(t *testing.T) {
	t.Parallel()
	dyn := newLiveDyn()
	dyn.errs["objectstores/db/store"] = apierrors.NewForbidden(schema.GroupResource{Group: "barmancloud.cnpg.io", Resource: "objectstores"}, "store", errorString(`User "bob" cannot get resource "objectstores"`))
	code, stdout, stderr, _ := runLive(t, dyn, IOStreams{}, "check", "--cluster", "pg", "-n", "db", "--offline", "-o", "json")
	if code != ExitFailed {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	var m report.Matrix
	if err := json.Unmarshal([]byte(stdout), &m); err != nil || len(m.Targets) != 1 {
		t.Fatalf("%v\n%s", err, stdout)
	}
	c := m.Targets[0].Check("config")
	want := `spec.plugins[0].parameters.barmanObjectName: forbidden: the identity may not get objectstores.barmancloud.cnpg.io "store" in namespace db (RBAC)`
	if c == nil || c.Status != report.Fail || !strings.HasPrefix(c.Message, want) {
		t.Errorf("config check %+v\nwant a failure starting %s", c, want)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestLiveCheckMissingCluster(t *testing.T) {
	t.Parallel()
	code, stdout, stderr, _ := runLive(t, newLiveDyn(), IOStreams{}, "check", "--cluster", "nope", "-n", "db", "--offline")
	if code != ExitUsage || stdout != "" || stderr != "cnpg-preflight: clusters.postgresql.cnpg.io \"nope\" not found in namespace db\n" {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
}

func TestLiveJobRole(t *testing.T) {
	t.Parallel()
	dyn := newLiveDyn()
	code, stdout, stderr, _ := runLive(t, dyn, IOStreams{}, "job", "--cluster", "pg", "-n", "db", "--image", "img:1")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"kind: Role\n",
		"  resources: [clusters]\n  verbs: [get]\n  resourceNames: [pg]\n",
		"  resources: [objectstores]\n  verbs: [get]\n  resourceNames: [store]\n",
		"  resources: [secrets]\n  verbs: [get]\n  resourceNames: [s3-creds, s3-region]\n",
		"serviceAccountName: pg\n",
		"args: [check, --cluster, pg, --namespace, db, --timeout, 1m0s]",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("manifests lack %q:\n%s", want, stdout)
		}
	}
	for _, never := range []string{"old-store", "old-creds", "list", "watch"} {
		if strings.Contains(stdout, never) {
			t.Errorf("manifests name %q:\n%s", never, stdout)
		}
	}
	wantCalls := "get clusters db/pg; get objectstores db/store"
	if got := strings.Join(dyn.recorded(), "; "); got != wantCalls {
		t.Errorf("API calls\n got %s\nwant %s (job reads no Secret)", got, wantCalls)
	}
}

func TestLiveTableColour(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tty    bool
		env    map[string]string
		args   []string
		colour bool
	}{
		{"terminal", true, nil, nil, true},
		{"terminal with NO_COLOR", true, map[string]string{"NO_COLOR": "1"}, nil, false},
		{"terminal with --no-color", true, nil, []string{"--no-color"}, false},
		{"not a terminal", false, nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := c.env
			streams := IOStreams{OutTTY: c.tty, Getenv: func(k string) string { return env[k] }}
			args := append([]string{"check", "--cluster", "pg", "-n", "db", "--offline"}, c.args...)
			code, stdout, stderr, _ := runLive(t, newLiveDyn(), streams, args...)
			if code != ExitOK {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "db/pg backup") || !strings.Contains(stdout, "1 target(s): 2 passed, 0 failed") {
				t.Errorf("table:\n%s", stdout)
			}
			if got := strings.Contains(stdout, "\033["); got != c.colour {
				t.Errorf("ANSI escapes %v, want %v:\n%q", got, c.colour, stdout)
			}
		})
	}
}
