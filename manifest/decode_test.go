package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func load(t *testing.T, doc string) (*Set, error) {
	t.Helper()
	s := NewSet()
	return s, s.Add("m.yaml", []byte(doc), "default")
}

const cluster = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg
  annotations:
    cnpg.io/skipEmptyWalArchiveCheck: enabled
spec:
  instances: 3
  storage: {size: 1Gi}
  backup:
    retentionPolicy: 30d
    barmanObjectStore:
      destinationPath: s3://b/p
      endpointUrl: http://x
      s3Credentials:
        inheritFromIAMRole: yes
        region: {name: s, key: r}
      wal:
        compression: gzip
        maxParallel: 4
        colour: blue
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: other}
data:
  r: ZXUtd2VzdC0x
stringData:
  plain: text
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
`

func TestDecodeClusterAndSecret(t *testing.T) {
	s, err := load(t, cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Clusters) != 1 {
		t.Fatalf("clusters: %d", len(s.Clusters))
	}
	c := s.Clusters[0]
	if c.Meta.Namespace != "default" || c.Meta.Name != "pg" || c.Origin.Line != 1 {
		t.Errorf("meta %+v origin %+v", c.Meta, c.Origin)
	}
	b := c.Spec.Backup.BarmanObjectStore
	if !b.S3Credentials.InheritFromIAMRole || b.Wal.MaxParallel == nil || *b.Wal.MaxParallel != 4 || b.EndpointURL != "" {
		t.Errorf("decoded %+v %+v endpoint %q", b.S3Credentials, b.Wal, b.EndpointURL)
	}
	want := []Issue{
		{Path: "spec.backup.barmanObjectStore.endpointUrl", Line: 14},
		{Path: "spec.backup.barmanObjectStore.wal.colour", Line: 21},
	}
	if len(c.Issues) != len(want) {
		t.Fatalf("issues: %+v", c.Issues)
	}
	for i, w := range want {
		if c.Issues[i].Path != w.Path || c.Issues[i].Line != w.Line {
			t.Errorf("issue %d: %+v, want %+v", i, c.Issues[i], w)
		}
	}
	if !strings.Contains(c.Issues[0].Msg, `did you mean "endpointURL"`) {
		t.Errorf("no suggestion: %s", c.Issues[0].Msg)
	}
	sec := s.Secret("other", "s")
	if sec == nil || string(sec.Data["r"]) != "eu-west-1" || string(sec.Data["plain"]) != "text" {
		t.Errorf("secret %+v", sec)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"syntax", "kind: Cluster\n  bad: [", "m.yaml:2: syntax error: "},
		{"tab", "apiVersion: v1\nkind: Secret\n\tmetadata: {}\n", "m.yaml:3: syntax error: found a tab character that violates indentation"},
		{"wrong bool", "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  backup:\n    barmanObjectStore:\n      s3Credentials:\n        inheritFromIAMRole: \"yes\"\n",
			`m.yaml:8: spec.backup.barmanObjectStore.s3Credentials.inheritFromIAMRole: wrong type: expected a boolean (true or false), got string "yes"`},
		{"wrong int", "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  backup:\n    barmanObjectStore:\n      wal: {maxParallel: x}\n",
			`m.yaml:7: spec.backup.barmanObjectStore.wal.maxParallel: wrong type: expected an integer, got string "x"`},
		{"bad base64", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: '%%%'\n", "m.yaml:5: data.k: value is not valid base64"},
		{"duplicate key", "apiVersion: v1\nkind: Secret\nkind: Secret\n", `m.yaml:3: syntax error: mapping key "kind" already defined at line 2`},
		{"not an object", "- a\n- b\n", "m.yaml:1: document is not an object"},
		{"no kind", "foo: bar\n", "m.yaml:1: kind: missing apiVersion and kind"},
		{"wrong version", "apiVersion: postgresql.cnpg.io/v2\nkind: Cluster\nmetadata: {name: a}\n", `m.yaml:1: apiVersion: Cluster has apiVersion "postgresql.cnpg.io/v2"`},
		{"no name", "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nspec: {}\n", "m.yaml:1: metadata.name: Cluster has no name"},
		{"ObjectStore without apiVersion", "kind: ObjectStore\nmetadata: {name: store}\nspec: {}\n", "m.yaml:1: apiVersion: ObjectStore has no apiVersion (the API server refuses it too); cnpg-preflight reads ObjectStore with apiVersion barmancloud.cnpg.io/v1"},
		{"Cluster without apiVersion", "kind: Cluster\nmetadata: {name: a}\n", "m.yaml:1: apiVersion: Cluster has no apiVersion"},
		{"connectionParameters not a mapping", "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  externalClusters:\n  - name: x\n    connectionParameters: host=a\n",
			"m.yaml:7: spec.externalClusters[0].connectionParameters: wrong type: expected an object, got string"},
		{"non utf8", "apiVersion: v1\nkind: Secret\nmetadata: {name: \xff}\n", "m.yaml: not a text file"},
		{"list item", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n  data: {k: '!!'}\n", "m.yaml:7: items[0].data.k: value is not valid base64"},
		{"billion laughs", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nkind: Secret\napiVersion: v1\nmetadata: {name: x}\nstringData: {k: v}\n", "m.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.doc)
			var ie *InputError
			if !errors.As(err, &ie) {
				if c.name == "billion laughs" && err == nil {
					return // aliases inside unknown fields are never expanded
				}
				t.Fatalf("got %v, want an InputError", err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("got  %q\nwant prefix %q", err.Error(), c.want)
			}
		})
	}
}

// TestLenientAndIgnored: connectionParameters are read for their presence whatever their values;
// other kinds are counted for the "nothing to check" message.
func TestLenientAndIgnored(t *testing.T) {
	doc := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  externalClusters:\n  - name: x\n    connectionParameters: {host: h, port: 5432, sslmode: verify-full}\n  - name: y\n    connectionParameters: {}\n  - name: z\n" +
		"---\napiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {name: b}\n---\napiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata: {name: c}\n---\napiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata: {name: capi}\n---\nkind: \"Evil\\u001b[2J\"\n"
	s, err := load(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	ecs := s.Clusters[0].Spec.ExternalClusters
	if ecs[0].ConnectionParameters == nil || ecs[1].ConnectionParameters == nil || ecs[2].ConnectionParameters != nil {
		t.Errorf("connectionParameters presence: %v %v %v", ecs[0].ConnectionParameters, ecs[1].ConnectionParameters, ecs[2].ConnectionParameters)
	}
	want := `1 Cluster(s), 0 ObjectStore(s), 0 Secret(s), 2 ScheduledBackup(s); ignored 1 "Evil\x1b[2J", 1 Cluster (cluster.x-k8s.io/v1beta1)`
	if got := s.Summary(); got != want {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}
}

// TestIsReplica mirrors CNPG's Cluster.IsReplica and the topology's own entry.
func TestIsReplica(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name    string
		r       *ReplicaConfiguration
		replica bool
		self    string
	}{
		{"no replica stanza", nil, false, ""},
		{"legacy source only", &ReplicaConfiguration{Source: "b"}, true, ""},
		{"enabled true", &ReplicaConfiguration{Enabled: &yes, Source: "b"}, true, ""},
		{"enabled false", &ReplicaConfiguration{Enabled: &no, Source: "b"}, false, ""},
		{"enabled decides alone", &ReplicaConfiguration{Enabled: &no, Primary: "b", Source: "b"}, false, "a"},
		{"primary names the Cluster", &ReplicaConfiguration{Primary: "a", Source: "b"}, false, "a"},
		{"primary names the peer", &ReplicaConfiguration{Primary: "b", Source: "b"}, true, "a"},
		{"self equals primary", &ReplicaConfiguration{Self: "dc-a", Primary: "dc-a", Source: "dc-b"}, false, "dc-a"},
		{"self differs from primary", &ReplicaConfiguration{Self: "dc-a", Primary: "dc-b", Source: "dc-b"}, true, "dc-a"},
		{"self without primary", &ReplicaConfiguration{Self: "dc-a", Source: "dc-b"}, true, "dc-a"},
	}
	for _, c := range cases {
		cl := &Cluster{Meta: Meta{Name: "a"}, Spec: ClusterSpec{Replica: c.r}}
		if got := cl.IsReplica(); got != c.replica {
			t.Errorf("%s: IsReplica %v, want %v", c.name, got, c.replica)
		}
		if got := cl.SelfName(); got != c.self {
			t.Errorf("%s: SelfName %q, want %q", c.name, got, c.self)
		}
	}
}

func TestDuplicateCluster(t *testing.T) {
	doc := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\n---\napiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\n"
	_, err := load(t, doc)
	if err == nil || !strings.Contains(err.Error(), "m.yaml:5: metadata.name: Cluster default/a is defined twice (first in m.yaml:1)") {
		t.Errorf("got %v", err)
	}
}

func TestLoadPaths(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(cluster), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	set, err := Load([]string{dir}, nil, "ns")
	if err != nil || len(set.Clusters) != 1 || set.Clusters[0].Meta.Namespace != "ns" {
		t.Fatalf("load dir: %v %+v", err, set)
	}
	empty := t.TempDir()
	if _, err := Load([]string{empty}, nil, "ns"); err == nil || !strings.Contains(err.Error(), "directory holds no *.yaml") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := Load([]string{filepath.Join(dir, "missing.yaml")}, nil, "ns"); err == nil || !strings.HasSuffix(err.Error(), "missing.yaml: no such file or directory") {
		t.Errorf("missing file: %v", err)
	}
	set, err = Load([]string{"-"}, strings.NewReader(`{"apiVersion":"postgresql.cnpg.io/v1","kind":"Cluster","metadata":{"name":"j"},"spec":{"backup":{"barmanObjectStore":{"destinationPath":"s3://b"}}}}`), "ns")
	if err != nil || len(set.Clusters) != 1 || set.Clusters[0].Spec.Backup.BarmanObjectStore.DestinationPath != "s3://b" {
		t.Fatalf("json from stdin: %v", err)
	}
}

func TestObjectStore(t *testing.T) {
	doc := `apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store, namespace: db}
spec:
  retentionPolicy: 7d
  configuration:
    destinationPath: s3://b/p
    serverName: nope
    endpointUrl: http://x
  instanceSidecarConfiguration:
    env:
    - {name: AWS_REQUEST_CHECKSUM_CALCULATION, value: when_required}
`
	s, err := load(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	o := s.ObjectStore("db", "store")
	if o == nil || o.Spec.Configuration.ServerName != "nope" || o.Spec.InstanceSidecarConfiguration.Env[0].Value != "when_required" {
		t.Fatalf("%+v", o)
	}
	if len(o.Issues) != 1 || o.Issues[0].Path != "spec.configuration.endpointUrl" || o.Issues[0].Line != 9 {
		t.Errorf("issues %+v", o.Issues)
	}
}

// nestedLists is a List holding a List … (levels deep) around one Cluster, padded to size bytes.
func nestedLists(levels, pad int) string {
	var b strings.Builder
	for i := 0; i < levels; i++ {
		ind := strings.Repeat("  ", 2*i)
		b.WriteString(ind + "- apiVersion: v1\n" + ind + "  kind: List\n" + ind + "  metadata: {annotations: {pad: \"" + strings.Repeat("x", pad) + "\"}}\n" + ind + "  items:\n")
	}
	ind := strings.Repeat("  ", 2*levels)
	b.WriteString(ind + "- {apiVersion: postgresql.cnpg.io/v1, kind: Cluster, metadata: {name: pg}}\n")
	return "apiVersion: v1\nkind: List\nitems:\n" + b.String()
}

// Nested Lists cost memory linear in their size (each level used to copy its whole subtree), and
// nesting beyond MaxListDepth is refused in one line.
func TestNestedListsLinear(t *testing.T) {
	doc := nestedLists(MaxListDepth-1, 20000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := load(t, doc)
	runtime.ReadMemStats(&after)
	if err != nil || len(s.Clusters) != 1 {
		t.Fatalf("%v (%d clusters)", err, len(s.Clusters))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40*uint64(len(doc))+(4<<20) {
		t.Errorf("decoding %d bytes allocated %d bytes", len(doc), alloc)
	}
	_, err = load(t, nestedLists(MaxListDepth+1, 10))
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, "nested more than") {
		t.Errorf("deep Lists: %v", err)
	}
}

// A deeply nested document is refused in one short line.
func TestDeepDocumentRefused(t *testing.T) {
	doc := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg}\nspec: {backup: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}\n"
	_, err := load(t, doc)
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, "nested more than") || len(err.Error()) > 200 {
		t.Errorf("deep document: %v", err)
	}
}

// A Cluster's status (live, or kept in a file) carries its system identifier.
func TestStatusSystemID(t *testing.T) {
	s := NewSet()
	err := s.Add("x.yaml", []byte("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a, namespace: db}\nspec: {}\nstatus:\n  systemID: \"7714714304834387594\"\n  timelineID: 2\n"), "default")
	if err != nil || len(s.Clusters) != 1 || s.Clusters[0].Status == nil || s.Clusters[0].Status.SystemID != "7714714304834387594" || s.Clusters[0].Status.TimelineID != 2 {
		t.Fatalf("%v %+v", err, s.Clusters)
	}
}
