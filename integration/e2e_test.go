package integration

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// e2eStore abstracts the two providers barman-cloud runs on here (S3 on MinIO, Azure on Azurite).
type e2eStore struct {
	dest     string            // barman destinationPath
	env      map[string]string // backup client environment
	barman   []string          // --cloud-provider … (and --endpoint-url) for barman-cloud-*
	block    string            // barmanObjectStore body (credentials, endpoint), indented by 6
	secret   string            // Secret manifest
	get      func(key string) []byte
	put      func(key string, data []byte)
	del      func(key string)
	list     func() []string
	keyOf    func(suffix string) string // object key of a path under the destination
	snapshot func() map[string]string
}

func s3E2E(t *testing.T) e2eStore {
	e, mc, bucket := minioBucket(t)
	user, pass, ep := e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"), e.srv.Get("MINIO_ENDPOINT")
	return e2eStore{
		dest:   "s3://" + bucket + "/archive",
		env:    map[string]string{"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": pass},
		barman: []string{"--cloud-provider", "aws-s3", "--endpoint-url", ep},
		block:  fmt.Sprintf("      endpointURL: %s\n      s3Credentials:\n        accessKeyId: {name: e2e, key: id}\n        secretAccessKey: {name: e2e, key: secret}\n", ep),
		secret: fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: e2e, namespace: db}\nstringData: {id: %s, secret: %s}\n", user, pass),
		get:    func(k string) []byte { return testenv.Get(t, mc, bucket, k) },
		put:    func(k string, d []byte) { testenv.Put(t, mc, bucket, k, d) },
		del:    func(k string) { testenv.Delete(t, mc, bucket, k) },
		list: func() []string {
			var ks []string
			for k := range testenv.Snapshot(t, mc, bucket) {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			return ks
		},
		keyOf:    func(s string) string { return "archive/" + s },
		snapshot: func() map[string]string { return testenv.Snapshot(t, mc, bucket) },
	}
}

func azureE2E(t *testing.T) e2eStore {
	_, az := azurite(t, false)
	cs := az.ConnectionString()
	return e2eStore{
		dest:   az.Destination("archive"),
		env:    map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs},
		barman: []string{"--cloud-provider", "azure-blob-storage"},
		block:  "      azureCredentials:\n        connectionString: {name: e2e, key: cs}\n",
		secret: fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: e2e, namespace: db}\nstringData: {cs: %q}\n", cs),
		get:    func(k string) []byte { return az.Get(t, k) },
		put:    func(k string, d []byte) { az.Put(t, k, d) },
		del:    func(k string) { az.Delete(t, k) },
		list: func() []string {
			var ks []string
			for k := range az.Snapshot(t) {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			return ks
		},
		keyOf:    func(s string) string { return "archive/" + s },
		snapshot: func() map[string]string { return az.Snapshot(t) },
	}
}

func TestE2ES3(t *testing.T)    { t.Parallel(); runE2E(t, s3E2E(t)) }
func TestE2EAzure(t *testing.T) { t.Parallel(); runE2E(t, azureE2E(t)) }

// runE2E: a real PostgreSQL archives WAL with barman-cloud-wal-archive, barman-cloud-backup takes a
// base backup, and a recovery Cluster (in-tree, then through the plugin) is checked against it.
func runE2E(t *testing.T, s e2eStore) {
	const server = "origin"
	pg := testenv.StartPostgres(t, s.env, append(append([]string{}, s.barman...), "--gzip", s.dest, server)...)
	pg.SQL("CREATE TABLE t AS SELECT generate_series(1, 10000) AS i")
	pg.Backup(append(append([]string{}, s.barman...), s.dest, server)...)
	pg.WaitArchived(pg.SQL("SELECT pg_walfile_name(pg_current_wal_lsn())"))
	pg.Stop() // nothing more is archived while the store is compared before and after each run

	code, out := testenv.Barman(t, s.env, "barman-cloud-backup-list", append(append([]string{}, s.barman...), s.dest, server)...)
	if code != 0 {
		t.Fatalf("barman-cloud-backup-list: %d\n%s", code, out)
	}
	var info, backupID string
	for _, k := range s.list() {
		if strings.HasSuffix(k, "/backup.info") {
			backupID = strings.Split(strings.TrimPrefix(k, s.keyOf(server+"/base/")), "/")[0]
			info = string(s.get(k))
		}
	}
	if backupID == "" || !strings.Contains(out, backupID) {
		t.Fatalf("backup %q not found (barman lists:\n%s)", backupID, out)
	}
	beginWAL := field(info, "begin_wal")

	inTree := fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: restored, namespace: db}
spec:
  bootstrap:
    recovery: {source: origin}
  externalClusters:
  - name: origin
    barmanObjectStore:
      destinationPath: %s
%s---
%s`, s.dest, s.block, s.secret)
	plugin := fmt.Sprintf(`apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store, namespace: db}
spec:
  configuration:
    destinationPath: %s
%s---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: restored, namespace: db}
spec:
  bootstrap:
    recovery: {source: origin}
  externalClusters:
  - name: origin
    plugin:
      name: barman-cloud.cloudnative-pg.io
      parameters: {barmanObjectName: store, serverName: origin}
---
%s`, s.dest, strings.ReplaceAll(s.block, "\n      ", "\n    ")[2:], s.secret)
	plugin = strings.Replace(plugin, "destinationPath: "+s.dest+"\n    ", "destinationPath: "+s.dest+"\n    ", 1)

	const source = "db/restored/recovery-source/origin"
	const good = "write=skip overwrite=skip delete=skip multipart=skip *=pass"
	before := s.snapshot()
	for name, doc := range map[string]string{"in-tree": inTree, "plugin": plugin} {
		r := testenv.Check(t, doc)
		wantStatuses(t, r, source, good)
		if b := r.CheckOf(source, "backups"); !strings.Contains(b.Message, "latest completed "+backupID) {
			t.Errorf("%s: backups: %+v", name, b)
		}
		if w := r.CheckOf(source, "wal-archive"); !strings.Contains(w.Message, beginWAL) || !strings.Contains(w.Message, "needed by backup "+backupID) {
			t.Errorf("%s: wal-archive: %+v", name, w)
		}
		t.Logf("%s matrix:\n%s", name, table(t, doc))
	}
	if d := testenv.Diff(before, s.snapshot()); d != "" {
		t.Errorf("checking a source changed it:\n%s", d)
	}

	// An unfinished backup is named; a missing WAL segment the backup needs fails, named.
	s.put(s.keyOf(server+"/base/20991231T000000/data.tar"), []byte("partial"))
	walKey := s.keyOf(server + "/wals/" + beginWAL[:16] + "/" + beginWAL + ".gz")
	s.del(walKey)
	for name, doc := range map[string]string{"in-tree": inTree, "plugin": plugin} {
		r := testenv.Check(t, doc)
		if b := r.CheckOf(source, "backups"); b.Status != "warn" || !strings.Contains(b.Message, "20991231T000000 (no backup.info: unfinished") {
			t.Errorf("%s: backups with an unfinished backup: %+v", name, b)
		}
		if w := r.CheckOf(source, "wal-archive"); w.Status != "fail" || !strings.Contains(w.Message, "missing") || !strings.Contains(w.Message, beginWAL) {
			t.Errorf("%s: wal-archive with %s deleted: %+v", name, beginWAL, w)
		}
		if r.Code != 1 {
			t.Errorf("%s: exit %d, want 1", name, r.Code)
		}
		t.Logf("%s matrix after deleting %s:\n%s", name, beginWAL, table(t, doc))
	}
	// barman agrees that the segment is gone.
	code, out = testenv.Barman(t, s.env, "barman-cloud-wal-restore", append(append([]string{}, s.barman...), s.dest, server, beginWAL, t.TempDir()+"/x")...)
	if code == 0 {
		t.Errorf("barman-cloud-wal-restore found the deleted segment:\n%s", out)
	}
}

func field(info, key string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func table(t *testing.T, doc string) string {
	return testenv.Run(t, doc, "check", "-f", "-", "--no-color").Stdout
}
