package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// A distributed topology in two regions (CNPG's replica_cluster.md, "Distributed Topology"):
// pg-south and pg-north each archive into their own prefix of the store, written by the real
// barman-cloud-wal-archive and barman-cloud-backup of a real PostgreSQL. Both Clusters' manifests
// are checked, in-tree and through the plugin, before and after a switchover; where barman-cloud
// can tell (barman-cloud-check-wal-archive), its verdict on the backup destination is compared.
//
// pg-north's archive is written by a second, independent PostgreSQL: a stand-in for the replica
// cluster's designated primary, which archives the WAL it receives into its own archive. The checks
// read catalogs and WAL names, not the system identifier, so the stand-in exercises the same paths.

func TestTopologyS3(t *testing.T)    { t.Parallel(); runTopology(t, s3E2E(t)) }
func TestTopologyAzure(t *testing.T) { t.Parallel(); runTopology(t, azureE2E(t)) }

// region is one Cluster of the topology and where it archives.
type region struct {
	name, dest string
}

// topology writes the manifests of one Cluster of the pair.
type topology struct {
	s            e2eStore
	south, north region
}

func (tp topology) regions(name string) (me, peer region) {
	if name == tp.south.name {
		return tp.south, tp.north
	}
	return tp.north, tp.south
}

// running is the status of a Cluster that archives (what `kubectl get cluster -o yaml` shows).
const running = `status:
  currentPrimary: pg-south-1
  timelineID: 1
  conditions:
  - {type: ContinuousArchiving, status: "True", reason: ContinuousArchivingSuccess}
`

// spec is the part of a Cluster's spec that is the same in-tree and through the plugin.
func replicaSpec(me string, primary, source, recoverFrom, token string) string {
	var b strings.Builder
	if recoverFrom != "" {
		fmt.Fprintf(&b, "  bootstrap:\n    recovery: {source: %s}\n", recoverFrom)
	}
	fmt.Fprintf(&b, "  replica:\n    self: %s\n    primary: %s\n    source: %s\n", me, primary, source)
	if token != "" {
		fmt.Fprintf(&b, "    promotionToken: %s\n", token)
	}
	return b.String()
}

// inTree is a Cluster of the topology with spec.backup.barmanObjectStore and in-tree entries.
func (tp topology) inTree(name, primary, source, recoverFrom, token, status string) string {
	me, peer := tp.regions(name)
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: %[1]s, namespace: db}
spec:
%[2]s  backup:
    barmanObjectStore:
      destinationPath: %[3]s
%[4]s  externalClusters:
  - name: %[1]s
    barmanObjectStore:
      destinationPath: %[3]s
      serverName: %[1]s
%[4]s  - name: %[5]s
    barmanObjectStore:
      destinationPath: %[6]s
      serverName: %[5]s
%[4]s%[7]s---
%[8]s`, me.name, replicaSpec(me.name, primary, source, recoverFrom, token), me.dest, tp.s.block, peer.name, peer.dest, status, tp.s.secret)
}

// plugin is the same Cluster through the Barman Cloud plugin: one ObjectStore per region.
func (tp topology) plugin(name, primary, source, recoverFrom, token, status string) string {
	me, _ := tp.regions(name)
	block := strings.ReplaceAll(tp.s.block, "\n      ", "\n    ")[2:]
	var stores strings.Builder
	for _, r := range []region{tp.south, tp.north} {
		fmt.Fprintf(&stores, "apiVersion: barmancloud.cnpg.io/v1\nkind: ObjectStore\nmetadata: {name: %s, namespace: db}\nspec:\n  configuration:\n    destinationPath: %s\n%s---\n", r.name, r.dest, block)
	}
	return fmt.Sprintf(`%[1]sapiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: %[2]s, namespace: db}
spec:
%[3]s  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWALArchiver: true
    parameters: {barmanObjectName: %[2]s}
  externalClusters:
  - name: pg-south
    plugin:
      name: barman-cloud.cloudnative-pg.io
      parameters: {barmanObjectName: pg-south, serverName: pg-south}
  - name: pg-north
    plugin:
      name: barman-cloud.cloudnative-pg.io
      parameters: {barmanObjectName: pg-north, serverName: pg-north}
%[4]s---
%[5]s`, stores.String(), me.name, replicaSpec(me.name, primary, source, recoverFrom, token), status, tp.s.secret)
}

func runTopology(t *testing.T, s e2eStore) {
	tp := topology{s: s, south: region{"pg-south", s.dest + "/south"}, north: region{"pg-north", s.dest + "/north"}}
	barman := func(r region) []string { return append(append([]string{}, s.barman...), r.dest, r.name) }
	// barmanEmpty runs barman-cloud-check-wal-archive, CNPG's empty-archive check, on a region.
	barmanEmpty := func(r region) bool {
		code, out := testenv.Barman(t, s.env, "barman-cloud-check-wal-archive", barman(r)...)
		t.Logf("barman-cloud-check-wal-archive %s: exit %d %s", r.name, code, strings.TrimSpace(out))
		return code == 0
	}
	const token = "eyJsc24iOiIwLzVBMDAwMDI4IiwidGltZWxpbmVJRCI6MX0="
	type check struct {
		name  string
		doc   func(string, string, string, string, string, string) string
		args  [6]string // name, primary, source, recoverFrom, token, status
		specs map[string]string
		exit  int
		msgs  map[string]string // "target check" -> substring of the message
	}
	variants := map[string]func(string, string, string, string, string, string) string{"in-tree": tp.inTree, "plugin": tp.plugin}
	run := func(t *testing.T, c check) {
		for vname, doc := range variants {
			t.Run(c.name+" "+vname, func(t *testing.T) {
				manifest := doc(c.args[0], c.args[1], c.args[2], c.args[3], c.args[4], c.args[5])
				before := s.snapshot()
				r := testenv.Check(t, manifest)
				for target, spec := range c.specs {
					if vname == "in-tree" && strings.HasSuffix(target, "/backup") {
						spec = "config=warn " + spec // deprecated in favour of the plugin
					}
					wantStatuses(t, r, target, spec)
				}
				for k, sub := range c.msgs {
					target, id, _ := strings.Cut(k, " ")
					if m := r.CheckOf(target, id).Message; !strings.Contains(m, sub) {
						t.Errorf("%s %s: %q does not contain %q", target, id, m, sub)
					}
				}
				if r.Code != c.exit {
					t.Errorf("exit %d, want %d", r.Code, c.exit)
				}
				if d := testenv.Diff(before, s.snapshot()); d != "" {
					t.Errorf("the store changed (sources are read-only, probes are deleted):\n%s", d)
				}
				if t.Failed() {
					t.Logf("\n%s", table(t, manifest))
				}
			})
		}
	}
	const (
		probed   = "backups=skip *=pass"                                             // a backup destination, written and read back
		readOnly = "write=skip overwrite=skip delete=skip multipart=skip *=pass"     // a source with backups and WAL
		ownEntry = "config=pass *=skip"                                              // self: configuration only
		dormant  = "read=skip write=skip overwrite=skip delete=skip multipart=skip " // a peer not written yet
	)

	// pg-south, the primary, archives and takes a base backup.
	south := testenv.StartPostgres(t, s.env, append(append([]string{}, s.barman...), "--gzip", tp.south.dest, tp.south.name)...)
	south.SQL("CREATE TABLE t AS SELECT generate_series(1, 10000) AS i")
	south.Backup(barman(tp.south)...)
	south.WaitArchived(south.SQL("SELECT pg_walfile_name(pg_current_wal_lsn())"))
	south.Stop() // nothing more is archived while the stores are compared before and after each run

	t.Run("before the switchover", func(t *testing.T) {
		if !barmanEmpty(tp.north) {
			t.Fatal("barman-cloud-check-wal-archive: pg-north's archive should be empty")
		}
		// pg-north, a new replica cluster: bootstraps from pg-south's archive, its own is empty.
		run(t, check{name: "pg-north new replica", args: [6]string{"pg-north", "pg-south", "pg-south", "pg-south", "", ""}, exit: 0,
			specs: map[string]string{"db/pg-north/backup": probed, "db/pg-north/self/pg-north": ownEntry, "db/pg-north/replica-source/pg-south": readOnly},
			msgs:  map[string]string{"db/pg-north/backup wal-archive": "the archive is empty", "db/pg-north/replica-source/pg-south backups": "latest completed"}})
		// pg-south, running (its status says it archives): its own archive is in use; its peer's is
		// still empty, which only warns.
		run(t, check{name: "pg-south running primary", args: [6]string{"pg-south", "pg-south", "pg-north", "", "", running}, exit: 0,
			specs: map[string]string{"db/pg-south/backup": probed, "db/pg-south/self/pg-south": ownEntry, "db/pg-south/peer-source/pg-north": dormant + "backups=warn wal-archive=warn *=pass"},
			msgs:  map[string]string{"db/pg-south/backup wal-archive": "archive in use by this Cluster", "db/pg-south/peer-source/pg-north wal-archive": "only after a demotion"}})
		// The same manifest without status is a new Cluster: CNPG's check would refuse the archive,
		// and so does barman-cloud.
		if barmanEmpty(tp.south) {
			t.Error("barman-cloud-check-wal-archive accepts pg-south's archive")
		}
		run(t, check{name: "pg-south as a new Cluster", args: [6]string{"pg-south", "pg-south", "pg-north", "", "", ""}, exit: 1,
			specs: map[string]string{"db/pg-south/backup": "wal-archive=fail", "db/pg-south/self/pg-south": ownEntry},
			msgs:  map[string]string{"db/pg-south/backup wal-archive": "Expected empty archive"}})
	})

	// pg-north archives into its own prefix too (as the replica's designated primary does) and
	// takes a backup there (backups from the replica cluster).
	north := testenv.StartPostgres(t, s.env, append(append([]string{}, s.barman...), "--gzip", tp.north.dest, tp.north.name)...)
	north.SQL("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
	north.Backup(barman(tp.north)...)
	north.WaitArchived(north.SQL("SELECT pg_walfile_name(pg_current_wal_lsn())"))
	north.Stop()

	t.Run("after the switchover", func(t *testing.T) {
		// pg-south demoted (primary: pg-north): it follows pg-north's archive, and its own archive is
		// expected to be in use although no status is given.
		run(t, check{name: "pg-south demoted", args: [6]string{"pg-south", "pg-north", "pg-north", "", "", ""}, exit: 0,
			specs: map[string]string{"db/pg-south/backup": probed, "db/pg-south/self/pg-south": ownEntry, "db/pg-south/replica-source/pg-north": readOnly},
			msgs:  map[string]string{"db/pg-south/backup wal-archive": "demoted"}})
		// pg-north promoted with the demotion token: primary now, pg-south its peer.
		run(t, check{name: "pg-north promoted", args: [6]string{"pg-north", "pg-north", "pg-south", "pg-south", token, ""}, exit: 0,
			specs: map[string]string{"db/pg-north/backup": probed, "db/pg-north/self/pg-north": ownEntry, "db/pg-north/peer-source/pg-south": readOnly},
			msgs:  map[string]string{"db/pg-north/backup wal-archive": "promotionToken"}})
		// pg-north's "before" manifest again: a new replica whose archive is not empty fails, as
		// barman-cloud does.
		if barmanEmpty(tp.north) {
			t.Error("barman-cloud-check-wal-archive accepts pg-north's archive")
		}
		run(t, check{name: "pg-north as a new replica, archive not empty", args: [6]string{"pg-north", "pg-south", "pg-south", "pg-south", "", ""}, exit: 1,
			specs: map[string]string{"db/pg-north/backup": "wal-archive=fail", "db/pg-north/replica-source/pg-south": readOnly},
			msgs:  map[string]string{"db/pg-north/backup wal-archive": "Expected empty archive"}})
	})
}
