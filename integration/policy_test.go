package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/cnpg-preflight/cnpg-preflight/cli"
	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/s3"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// The proof of `cnpg-preflight policy`: an identity holding exactly the generated policy passes
// every check and every barman-cloud 3.13 command its role needs (against a real PostgreSQL 15);
// with any one statement, action or SAS letter taken away, check fails naming that permission and
// the barman-cloud command that needs it fails. The matrix below is what the servers answered;
// README "Least-privilege policies" shows it.

const (
	policyServer  = "pg"
	policyBackup  = "db/pg/backup"
	policySource  = "db/restored/recovery-source/origin"
	abortMultipar = "s3:AbortMultipartUpload"
)

// policyRow is what one identity could do: the checks that failed (id: remediation) and the
// barman-cloud commands that failed.
type policyRow struct {
	checks map[string]string
	barman []string
}

func (r policyRow) failedChecks() string {
	var ids []string
	for id := range r.checks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

// proofStore is one store the proof runs on.
type proofStore struct {
	args  []string // barman-cloud's --cloud-provider … arguments
	dest  string
	block string // the barmanObjectStore body after destinationPath (credentials), indented by 6
	// secret is the Secret manifest for an identity's barman environment.
	secret func(env map[string]string) string
}

func (s proofStore) manifests(env map[string]string) (backup, source string) {
	backup = fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  instances: 1
  backup:
    barmanObjectStore:
      destinationPath: %s
%sstatus:
  conditions:
  - {type: ContinuousArchiving, status: "True", reason: ContinuousArchivingSuccess}
---
%s`, s.dest, s.block, s.secret(env))
	source = fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: restored, namespace: db}
spec:
  instances: 1
  bootstrap:
    recovery: {source: origin}
  externalClusters:
  - name: origin
    barmanObjectStore:
      destinationPath: %s
      serverName: %s
%s---
%s`, s.dest, policyServer, s.block, s.secret(env))
	return backup, source
}

// policyFor runs `cnpg-preflight policy -o json --target id`.
func policyFor(t *testing.T, manifest, id string) providers.Policy {
	t.Helper()
	r := testenv.Run(t, manifest, "policy", "-f", "-", "-o", "json", "--target", id)
	var doc cli.PolicyDocument
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil || r.Code != 0 || len(doc.Policies) != 1 {
		t.Fatalf("policy --target %s: exit %d, %v\n%s%s", id, r.Code, err, r.Stdout, r.Stderr)
	}
	return doc.Policies[0]
}

// checkRow runs check and returns the failed checks of target (none: the run passed).
func checkRow(t *testing.T, manifest, target string) map[string]string {
	t.Helper()
	r := testenv.Check(t, manifest)
	tg := r.Target(target)
	if tg == nil {
		t.Fatalf("no target %s: %s%s", target, r.Stdout, r.Stderr)
	}
	out := map[string]string{}
	for _, c := range tg.Checks {
		if c.Status == report.Fail {
			out[c.ID] = c.Message + " | fix: " + c.Remediation
		}
	}
	if (len(out) > 0) != (r.Code == 1) {
		t.Errorf("exit %d with failed checks %v", r.Code, out)
	}
	return out
}

var backupIDRE = regexp.MustCompile(`"backup_id": "([0-9]{8}T[0-9]{6})"`)

// backupIDs lists the backups with barman-cloud-backup-list --format json.
func backupIDs(t *testing.T, s proofStore, env map[string]string) []string {
	t.Helper()
	code, out := testenv.Barman(t, env, "barman-cloud-backup-list", append(append([]string{}, s.args...), "--format", "json", s.dest, policyServer)...)
	if code != 0 {
		t.Fatalf("barman-cloud-backup-list: %d\n%s", code, out)
	}
	var ids []string
	for _, m := range backupIDRE.FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// proof holds what every identity's run shares: the server, a WAL segment and a backup.
type proof struct {
	pg      *testenv.Postgres
	pgEnv   map[string]string // the environment PostgreSQL's barman scripts export (swapped per run)
	wal     string            // a WAL segment file archived under the store
	walName string
	full    map[string]string // an identity with the whole generated policy
}

// backupRun runs barman-cloud's commands of a backup target with env: wal-archive, backup (a real
// base backup), backup-list, wal-restore and backup-delete of a backup made for the purpose.
func (p *proof) backupRun(t *testing.T, s proofStore, env map[string]string) []string {
	t.Helper()
	var failed []string
	run := func(name string, args ...string) bool {
		code, out := testenv.Barman(t, env, name, append(append([]string{}, s.args...), args...)...)
		if code != 0 {
			failed = append(failed, name)
			t.Logf("%s: exit %d: %s", name, code, lastLine(out))
		}
		return code == 0
	}
	run("barman-cloud-wal-archive", s.dest, policyServer, p.wal)
	before := backupIDs(t, s, p.full)
	saved := map[string]string{}
	for k, v := range env {
		saved[k], p.pgEnv[k] = p.pgEnv[k], v
	}
	out, err := p.pg.TryBackup(append(append([]string{}, s.args...), s.dest, policyServer)...)
	for k := range env {
		p.pgEnv[k] = saved[k]
	}
	if err != nil {
		failed = append(failed, "barman-cloud-backup")
		t.Logf("barman-cloud-backup: %v: %s", err, lastLine(out))
	}
	run("barman-cloud-backup-list", s.dest, policyServer)
	run("barman-cloud-wal-restore", s.dest, policyServer, p.walName, filepath.Join(t.TempDir(), "restored"))
	after := backupIDs(t, s, p.full)
	victim := ""
	if len(after) > len(before) {
		victim = after[len(after)-1]
	} else { // the backup failed: one made with the whole policy is deleted instead
		if out, err := p.pg.TryBackup(append(append([]string{}, s.args...), s.dest, policyServer)...); err != nil {
			t.Fatalf("barman-cloud-backup with the whole policy: %v\n%s", err, out)
		}
		ids := backupIDs(t, s, p.full)
		victim = ids[len(ids)-1]
	}
	if run("barman-cloud-backup-delete", s.dest, policyServer, "--backup-id", victim) {
		for _, id := range backupIDs(t, s, p.full) {
			if id == victim {
				t.Errorf("barman-cloud-backup-delete succeeded but %s is still listed", victim)
			}
		}
	}
	return failed
}

// sourceRun runs what a recovery source is used for: backup-list, restore of the base backup
// and wal-restore.
func (p *proof) sourceRun(t *testing.T, s proofStore, env map[string]string, backupID string) []string {
	t.Helper()
	var failed []string
	for _, c := range []struct {
		name string
		args []string
	}{
		{"barman-cloud-backup-list", []string{s.dest, policyServer}},
		{"barman-cloud-restore", []string{s.dest, policyServer, backupID, filepath.Join(t.TempDir(), "pgdata")}},
		{"barman-cloud-wal-restore", []string{s.dest, policyServer, p.walName, filepath.Join(t.TempDir(), "restored")}},
	} {
		code, out := testenv.Barman(t, env, c.name, append(append([]string{}, s.args...), c.args...)...)
		if code != 0 {
			failed = append(failed, c.name)
			t.Logf("%s: exit %d: %s", c.name, code, lastLine(out))
		}
	}
	return failed
}

// lastLine is the line of barman's output that says why (its last ERROR or Error line).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "ERROR") || strings.Contains(lines[i], "Error:") || strings.Contains(lines[i], "ErrorCode:") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

var walRE = regexp.MustCompile(`"(begin|end)_wal": "([0-9A-F]{24})"`)

// walRange names the segments from begin to end (one timeline, 16 MiB segments).
func walRange(begin, end string) []string {
	var out []string
	for w := begin; w <= end && len(out) < 64; {
		out = append(out, w)
		var tli, log, seg uint32
		fmt.Sscanf(w, "%08X%08X%08X", &tli, &log, &seg)
		if seg++; seg > 0xFF {
			log, seg = log+1, 0
		}
		w = fmt.Sprintf("%08X%08X%08X", tli, log, seg)
	}
	return out
}

// minioPolicyUser makes a MinIO user holding exactly doc (removed when the test ends).
func minioPolicyUser(t *testing.T, mc func(...string) string, doc any) map[string]string {
	t.Helper()
	key, secret, name := testenv.Unique("pf-pol-user-"), testenv.Unique("pf-pol-secret-")+testenv.Unique(""), testenv.Unique("pf-pol-")
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mc("admin", "policy", "create", "local", name, path)
	mc("admin", "user", "add", "local", key, secret)
	mc("admin", "policy", "attach", "local", name, "--user", key)
	t.Cleanup(func() {
		mc("admin", "user", "remove", "local", key)
		mc("admin", "policy", "remove", "local", name)
	})
	return map[string]string{"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
}

// removal is a policy with one permission taken away.
type removal struct {
	removed string // the action (and its statement) taken away
	doc     s3.IAMPolicy
}

// removals takes each statement away in turn (each action, where a statement has several).
func removals(t *testing.T, doc any) []removal {
	t.Helper()
	var p s3.IAMPolicy
	b, _ := json.Marshal(doc)
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	copyOf := func() s3.IAMPolicy {
		var c s3.IAMPolicy
		json.Unmarshal(b, &c)
		return c
	}
	var out []removal
	for i, st := range p.Statement {
		for j, a := range st.Action {
			c := copyOf()
			if len(st.Action) == 1 {
				c.Statement = append(c.Statement[:i], c.Statement[i+1:]...)
			} else {
				c.Statement[i].Action = append(c.Statement[i].Action[:j], c.Statement[i].Action[j+1:]...)
			}
			out = append(out, removal{removed: a + " (" + st.Sid + ")", doc: c})
		}
	}
	return out
}

// want is the proof matrix: for each removed permission, the checks that fail and the
// barman-cloud commands that fail (as MinIO 2026-02 and Azurite 3.35 answer).
type want struct{ checks, barman string }

var s3BackupMatrix = map[string]want{
	"s3:ListBucket (BarmanHeadBucket)":                {"bucket", "barman-cloud-wal-archive,barman-cloud-backup,barman-cloud-backup-list,barman-cloud-wal-restore,barman-cloud-backup-delete"},
	"s3:ListBucket (BarmanListServerFolders)":         {"list,system-id,wal-archive", "barman-cloud-backup-list,barman-cloud-wal-restore,barman-cloud-backup-delete"},
	"s3:PutObject (BarmanReadWriteServerFolders)":     {"multipart,write", "barman-cloud-wal-archive,barman-cloud-backup"},
	"s3:GetObject (BarmanReadWriteServerFolders)":     {"delete,overwrite,read", "barman-cloud-wal-restore,barman-cloud-backup-delete"},
	"s3:DeleteObject (BarmanReadWriteServerFolders)":  {"delete", "barman-cloud-backup-delete"},
	abortMultipar + " (BarmanReadWriteServerFolders)": {"", ""},
}

var s3SourceMatrix = map[string]want{
	"s3:ListBucket (BarmanHeadBucket)":        {"bucket", "barman-cloud-backup-list,barman-cloud-restore,barman-cloud-wal-restore"},
	"s3:ListBucket (BarmanListServerFolders)": {"backups,list,read,system-id,wal-archive", "barman-cloud-backup-list,barman-cloud-restore,barman-cloud-wal-restore"},
	"s3:GetObject (BarmanReadSourceFolders)":  {"backups,read", "barman-cloud-restore,barman-cloud-wal-restore"},
}

var azureBackupMatrix = map[string]want{
	"r": {"delete,overwrite,read", "barman-cloud-wal-restore,barman-cloud-backup-delete"},
	"w": {"multipart,write", "barman-cloud-wal-archive,barman-cloud-backup"},
	"d": {"delete", "barman-cloud-backup-delete"},
	"l": {"bucket", "barman-cloud-wal-archive,barman-cloud-backup,barman-cloud-backup-list,barman-cloud-wal-restore,barman-cloud-backup-delete"},
}

var azureSourceMatrix = map[string]want{
	"r": {"backups,read,wal-archive", "barman-cloud-restore,barman-cloud-wal-restore"},
	"l": {"bucket", "barman-cloud-backup-list,barman-cloud-restore,barman-cloud-wal-restore"},
}

// permissionNamed says whether a failed check names the removed permission.
func permissionNamed(checks map[string]string, perm string) bool {
	for _, v := range checks {
		if strings.Contains(v, perm) {
			return true
		}
	}
	return false
}

func compareRow(t *testing.T, label string, got policyRow, w want, perm string) {
	t.Helper()
	t.Logf("MATRIX %s | checks failed: %s | barman failed: %s", label, orNone(got.failedChecks()), orNone(strings.Join(got.barman, ",")))
	if got.failedChecks() != w.checks || strings.Join(got.barman, ",") != w.barman {
		t.Errorf("%s: checks failed %q (want %q), barman commands failed %q (want %q)\n%v", label, got.failedChecks(), w.checks, strings.Join(got.barman, ","), w.barman, got.checks)
	}
	if w.checks != "" && !permissionNamed(got.checks, perm) {
		t.Errorf("%s: no failed check names %s: %v", label, perm, got.checks)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// TestPolicyProof runs the proof on MinIO (IAM policies) and Azurite (SAS letters) with one
// PostgreSQL 15 server, which archives to MinIO with exactly the generated backup policy.
func TestPolicyProof(t *testing.T) {
	t.Parallel() // ~5 minutes, mostly waiting on barman-cloud and PostgreSQL
	e, _, bucket := minioBucket(t)
	mc := testenv.MC(t, e.srv)
	ep := e.srv.Get("MINIO_ENDPOINT")
	st := proofStore{
		args:  []string{"--cloud-provider", "aws-s3", "--endpoint-url", ep},
		dest:  "s3://" + bucket + "/prod",
		block: fmt.Sprintf("      endpointURL: %s\n      s3Credentials:\n        accessKeyId: {name: creds, key: id}\n        secretAccessKey: {name: creds, key: secret}\n", ep),
		secret: func(env map[string]string) string {
			return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: db}\nstringData: {id: %q, secret: %q}\n", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
		},
	}
	placeholder := map[string]string{"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
	b, s := st.manifests(placeholder)
	backupPolicy, sourcePolicy := policyFor(t, b, policyBackup), policyFor(t, s, policySource)
	full := minioPolicyUser(t, mc, backupPolicy.Document)

	// PostgreSQL archives with the generated backup policy: every WAL archived is barman-cloud-wal-archive succeeding.
	pgEnv := map[string]string{}
	for k, v := range full {
		pgEnv[k] = v
	}
	pg := testenv.StartPostgres(t, pgEnv, append(append([]string{}, st.args...), st.dest, policyServer)...)
	pg.SQL("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
	if out, err := pg.TryBackup(append(append([]string{}, st.args...), st.dest, policyServer)...); err != nil {
		t.Fatalf("barman-cloud-backup with the generated policy: %v\n%s", err, out)
	}
	walName := pg.SQL("SELECT pg_walfile_name(pg_current_wal_lsn())")
	pg.WaitArchived(walName)
	wal := filepath.Join(t.TempDir(), walName)
	if code, out := testenv.Barman(t, full, "barman-cloud-wal-restore", append(append([]string{}, st.args...), st.dest, policyServer, walName, wal)...); code != 0 {
		t.Fatalf("barman-cloud-wal-restore with the generated policy: %d\n%s", code, out)
	}
	os.Chmod(filepath.Dir(wal), 0o755)
	os.Chmod(wal, 0o644)
	p := &proof{pg: pg, pgEnv: pgEnv, wal: wal, walName: walName, full: full}
	keeper := backupIDs(t, st, full)[0]

	t.Run("s3-backup", func(t *testing.T) {
		b, _ := st.manifests(full)
		compareRow(t, "s3 backup: whole policy", policyRow{checks: checkRow(t, b, policyBackup), barman: p.backupRun(t, st, full)}, want{}, "")
		for _, r := range removals(t, backupPolicy.Document) {
			env := minioPolicyUser(t, mc, r.doc)
			b, _ := st.manifests(env)
			perm := strings.Fields(r.removed)[0]
			compareRow(t, "s3 backup without "+r.removed, policyRow{checks: checkRow(t, b, policyBackup), barman: p.backupRun(t, st, env)}, s3BackupMatrix[r.removed], perm)
		}
	})
	t.Run("s3-source", func(t *testing.T) {
		env := minioPolicyUser(t, mc, sourcePolicy.Document)
		_, s := st.manifests(env)
		compareRow(t, "s3 source: whole policy", policyRow{checks: checkRow(t, s, policySource), barman: p.sourceRun(t, st, env, keeper)}, want{}, "")
		for _, r := range removals(t, sourcePolicy.Document) {
			env := minioPolicyUser(t, mc, r.doc)
			_, s := st.manifests(env)
			perm := strings.Fields(r.removed)[0]
			compareRow(t, "s3 source without "+r.removed, policyRow{checks: checkRow(t, s, policySource), barman: p.sourceRun(t, st, env, keeper)}, s3SourceMatrix[r.removed], perm)
		}
	})
	t.Run("azure-sas", func(t *testing.T) {
		_, az := azurite(t, false)
		ast := proofStore{
			args:  []string{"--cloud-provider", "azure-blob-storage"},
			dest:  az.Destination("prod"),
			block: "      azureCredentials:\n        connectionString: {name: creds, key: cs}\n",
			secret: func(env map[string]string) string {
				return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: db}\nstringData: {cs: %q}\n", env["AZURE_STORAGE_CONNECTION_STRING"])
			},
		}
		sasEnv := func(letters string) map[string]string {
			perms := sas.ContainerPermissions{Read: strings.Contains(letters, "r"), Write: strings.Contains(letters, "w"), Delete: strings.Contains(letters, "d"), List: strings.Contains(letters, "l"),
				Add: strings.Contains(letters, "a"), Create: strings.Contains(letters, "c")}
			cs, _ := az.SASConnectionString(t, perms)
			return map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}
		}
		b, s := ast.manifests(map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "BlobEndpoint=http://x/y;SharedAccessSignature=sv=1"})
		bp, sp := policyFor(t, b, policyBackup), policyFor(t, s, policySource)
		if bp.SAS == nil || sp.SAS == nil || bp.SAS.Permissions != "rwdl" || sp.SAS.Permissions != "rl" {
			t.Fatalf("SAS permissions: backup %+v, source %+v", bp.SAS, sp.SAS)
		}
		afull := sasEnv(bp.SAS.Permissions)
		ap := &proof{pg: pg, pgEnv: pgEnv, wal: wal, walName: walName, full: afull}
		// the store's own archive: a WAL segment and a backup kept for the reads
		if code, out := testenv.Barman(t, afull, "barman-cloud-wal-archive", append(append([]string{}, ast.args...), ast.dest, policyServer, wal)...); code != 0 {
			t.Fatalf("barman-cloud-wal-archive with SAS %s: %d\n%s", bp.SAS.Permissions, code, out)
		}
		for k, v := range afull {
			pgEnv[k] = v
		}
		if out, err := pg.TryBackup(append(append([]string{}, ast.args...), ast.dest, policyServer)...); err != nil {
			t.Fatalf("barman-cloud-backup with SAS %s: %v\n%s", bp.SAS.Permissions, err, out)
		}
		akeeper := backupIDs(t, ast, afull)[0]
		// PostgreSQL archives to MinIO: the WAL the Azure backup needs is copied over, as its archive would hold it
		code, out := testenv.Barman(t, afull, "barman-cloud-backup-list", append(append([]string{}, ast.args...), "--format", "json", ast.dest, policyServer)...)
		m := walRE.FindAllStringSubmatch(out, -1)
		if code != 0 || len(m) < 2 {
			t.Fatalf("barman-cloud-backup-list: %d\n%s", code, out)
		}
		pg.WaitArchived(m[1][2])
		for _, w := range walRange(m[0][2], m[1][2]) {
			f := filepath.Join(t.TempDir(), w)
			if code, out := testenv.Barman(t, full, "barman-cloud-wal-restore", append(append([]string{}, st.args...), st.dest, policyServer, w, f)...); code != 0 {
				t.Fatalf("barman-cloud-wal-restore %s: %d\n%s", w, code, out)
			}
			if code, out := testenv.Barman(t, afull, "barman-cloud-wal-archive", append(append([]string{}, ast.args...), ast.dest, policyServer, f)...); code != 0 {
				t.Fatalf("barman-cloud-wal-archive %s: %d\n%s", w, code, out)
			}
		}
		// the source first, while the keeper is the latest backup (backups made below have their WAL in MinIO only)
		senv := sasEnv(sp.SAS.Permissions)
		_, s = ast.manifests(senv)
		compareRow(t, "azure source: SAS "+sp.SAS.Permissions, policyRow{checks: checkRow(t, s, policySource), barman: ap.sourceRun(t, ast, senv, akeeper)}, want{}, "")
		for _, l := range sp.SAS.Permissions {
			env := sasEnv(strings.ReplaceAll(sp.SAS.Permissions, string(l), ""))
			_, s := ast.manifests(env)
			compareRow(t, "azure source without "+string(l), policyRow{checks: checkRow(t, s, policySource), barman: ap.sourceRun(t, ast, env, akeeper)}, azureSourceMatrix[string(l)], sasWord[l])
		}
		b, _ = ast.manifests(afull)
		compareRow(t, "azure backup: SAS "+bp.SAS.Permissions, policyRow{checks: checkRow(t, b, policyBackup), barman: ap.backupRun(t, ast, afull)}, want{}, "")
		for _, l := range bp.SAS.Permissions {
			env := sasEnv(strings.ReplaceAll(bp.SAS.Permissions, string(l), ""))
			b, _ := ast.manifests(env)
			compareRow(t, "azure backup without "+string(l), policyRow{checks: checkRow(t, b, policyBackup), barman: ap.backupRun(t, ast, env)}, azureBackupMatrix[string(l)], sasWord[l])
		}
	})
}

// sasWord is how a failed check names a SAS letter ("add d, delete, to the SAS permissions").
var sasWord = map[rune]string{'r': "r, read", 'w': "w, write", 'd': "d, delete", 'l': "l, list"}
