package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// memDriver serves s3:// destinations from an in-memory store (the real stores are tested against
// real servers in each provider's package and in integration/).
type memDriver struct{ store *providertest.MemStore }

func (memDriver) Info() providers.Info {
	return providers.Info{Name: "mem", CredentialsField: "s3Credentials", DestinationForm: "s3://BUCKET/PATH", BucketNoun: "bucket"}
}
func (memDriver) Serves(p string) bool { return strings.HasPrefix(p, "s3://") }
func (memDriver) Credentials(c *manifest.BarmanObjectStore) providers.Credentials {
	return providers.Credentials{Set: c.S3Credentials != nil}
}
func (memDriver) PutOptions(*manifest.BarmanObjectStore) providers.PutOptions {
	return providers.PutOptions{}
}
func (d memDriver) Validate(t *providers.Target) (providers.Location, []providers.Finding) {
	return providers.Location{Provider: "mem", Bucket: "b", Prefix: "p", ServerName: t.ServerName, Endpoint: d.store.Endpoint()}, nil
}
func (memDriver) CA(context.Context, *providers.Target) ([]byte, []providers.Finding) {
	return nil, nil
}
func (d memDriver) Connect(context.Context, *providers.Target, providers.Location, *providers.Net) (providers.Store, string, []providers.Finding) {
	return d.store, "memory", nil
}

func target(role string, d providers.Driver) *targets.Target {
	c := &manifest.Cluster{Meta: manifest.Meta{Name: "pg", Namespace: "db"}}
	conf := &manifest.BarmanObjectStore{DestinationPath: "s3://b/p", S3Credentials: &manifest.S3Credentials{InheritFromIAMRole: true}}
	source := ""
	if role != targets.RoleBackup {
		source = "peer"
	}
	return &targets.Target{ID: "db/pg/" + role, Cluster: c, Role: role, Source: source, Field: "f", Conf: conf, ServerName: "pg", Env: map[string]string{}, Driver: d}
}

func expect(t *testing.T, tg *report.Target, spec string) {
	t.Helper()
	for _, m := range Mismatches(tg, spec) {
		t.Error(m)
	}
}

// TestRunnerWithMemoryStore checks the runner's logic (prerequisites, read-only sources, cleanup)
// on an in-memory store; the real stores are covered against real servers.
func TestRunnerWithMemoryStore(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	for _, c := range []struct {
		name      string
		role      string
		readOnly  bool
		deny      map[string]bool
		seed      map[string]string
		want      string
		leftovers int
		cluster   func(*manifest.Cluster) // adjusts the Cluster (replica stanza, status, annotations)
	}{
		{"all pass", targets.RoleBackup, false, nil, nil, "backups=skip *=pass", 0, nil},
		{"write denied", targets.RoleBackup, false, map[string]bool{"Put": true, "Multipart": true}, nil, "write=fail read=skip delete=skip multipart=fail backups=skip wal-archive=pass", 0, nil},
		{"delete denied", targets.RoleBackup, false, map[string]bool{"Delete": true}, nil, "write=pass read=pass delete=fail multipart=pass backups=skip", 1, nil},
		{"source is read-only", targets.RoleRecoverySource, false, nil, nil, "list=pass write=skip read=skip delete=skip multipart=skip backups=fail wal-archive=fail", 0, recovers},
		{"recovery source of a snapshot recovery needs WAL only", targets.RoleRecoverySource, false, nil, map[string]string{wal1: realWAL}, "backups=warn wal-archive=pass", 0, func(c *manifest.Cluster) {
			c.Spec.Bootstrap = &manifest.Bootstrap{Recovery: &manifest.Recovery{Source: "peer", VolumeSnapshots: map[string]any{"storage": map[string]any{"name": "snap"}}}}
		}},
		{"replica source of a pg_basebackup replica needs WAL only", targets.RoleReplicaSource, false, nil, map[string]string{wal1: realWAL}, "backups=warn wal-archive=pass", 0, func(c *manifest.Cluster) {
			c.Spec.Replica = &manifest.ReplicaConfiguration{Enabled: new(true), Source: "peer"}
			c.Spec.Bootstrap = &manifest.Bootstrap{PgBaseBackup: &manifest.PgBaseBackup{Source: "peer"}}
		}},
		{"--read-only reads an existing object", targets.RoleBackup, true, nil, map[string]string{"p/pg/base/x/backup.info": "status=DONE"}, "write=skip read=pass delete=skip multipart=skip", 0, nil},
		{"non-empty archive", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "wal-archive=fail", 0, nil},
		{"non-empty archive of a running Cluster", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "backups=skip *=pass", 0, func(c *manifest.Cluster) {
			c.Status = &manifest.ClusterStatus{TimelineID: 1, Conditions: []manifest.Condition{{Type: "ContinuousArchiving", Status: "True"}}}
		}},
		{"non-empty archive of a demoted Cluster", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "backups=skip *=pass", 0, demoted},
		{"non-empty archive of a Cluster being promoted", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "backups=skip *=pass", 0, func(c *manifest.Cluster) {
			c.Spec.Replica = &manifest.ReplicaConfiguration{Primary: "pg", Source: "peer", PromotionToken: "t"}
			c.Spec.Bootstrap = &manifest.Bootstrap{Recovery: &manifest.Recovery{Source: "peer"}}
		}},
		{"non-empty archive of a new replica of a topology", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "wal-archive=fail", 0, func(c *manifest.Cluster) {
			c.Spec.Replica = &manifest.ReplicaConfiguration{Primary: "peer", Source: "peer"}
			c.Spec.Bootstrap = &manifest.Bootstrap{Recovery: &manifest.Recovery{Source: "peer"}}
		}},
		{"skipEmptyWalArchiveCheck: Enabled leaves the check on", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "wal-archive=fail", 0, func(c *manifest.Cluster) {
			c.Meta.Annotations = map[string]string{targets.SkipEmptyWALAnnotation: "Enabled"}
		}},
		{"skipEmptyWalArchiveCheck: enabled skips it", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "wal-archive=skip", 0, func(c *manifest.Cluster) {
			c.Meta.Annotations = map[string]string{targets.SkipEmptyWALAnnotation: "enabled"}
		}},
		{"peer source without backups or WAL only warns", targets.RolePeerSource, false, nil, nil, "list=pass write=skip read=skip delete=skip multipart=skip backups=warn wal-archive=warn", 0, nil},
		{"replica source of a new Cluster needs a backup", targets.RoleReplicaSource, false, nil, map[string]string{wal1: realWAL}, "list=pass write=skip read=pass delete=skip multipart=skip backups=fail wal-archive=pass", 0, func(c *manifest.Cluster) {
			c.Spec.Replica = &manifest.ReplicaConfiguration{Primary: "peer", Source: "peer"}
			c.Spec.Bootstrap = &manifest.Bootstrap{Recovery: &manifest.Recovery{Source: "peer"}}
		}},
		{"replica source of a demoted Cluster needs WAL only", targets.RoleReplicaSource, false, nil, map[string]string{wal1: realWAL}, "list=pass write=skip read=pass delete=skip multipart=skip backups=warn wal-archive=pass", 0, demoted},
		{"replica source of a demoted Cluster without WAL", targets.RoleReplicaSource, false, nil, nil, "backups=warn wal-archive=fail", 0, demoted},
		{"running Cluster's own archive (status.systemID)", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL, "p/pg/base/20261201T000000/backup.info": doneInfo(fixtureSysID)}, "backups=skip *=pass", 0, running(fixtureSysID)},
		{"another system's WAL in a running Cluster's archive", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL}, "system-id=fail", 0, running(42)},
		{"another system's backup in a running Cluster's archive", targets.RoleBackup, false, nil, map[string]string{wal1: realWAL, "p/pg/base/20261201T000000/backup.info": doneInfo(42)}, "system-id=fail", 0, running(fixtureSysID)},
		{"source whose backups and WAL agree", targets.RoleRecoverySource, false, nil, map[string]string{wal1: realWAL, "p/pg/base/20261201T000000/backup.info": doneInfo(fixtureSysID)}, "backups=pass system-id=pass", 0, recovers},
		{"source whose backups and WAL disagree", targets.RoleRecoverySource, false, nil, map[string]string{wal1: realWAL, "p/pg/base/20261201T000000/backup.info": doneInfo(42)}, "backups=pass system-id=fail", 0, recovers},
		{"self entry: config only", targets.RoleSelf, false, nil, nil, "config=warn credentials=skip endpoint=skip bucket=skip *=skip", 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := providertest.NewMemStore(ep)
			store.Deny, store.PageSize = c.deny, 2
			for k, v := range c.seed {
				data := []byte(v)
				if v == realWAL {
					data = fixture(t, "000000010000000000000002.gz")
				}
				store.Put(context.Background(), k, data, providers.PutOptions{})
			}
			d := memDriver{store}
			tg := target(c.role, d)
			if c.cluster != nil {
				c.cluster(tg.Cluster)
			}
			m := Execute(context.Background(), []*targets.Target{tg}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second, ReadOnly: c.readOnly})
			expect(t, m.Targets[0], "config=pass credentials=pass endpoint=pass bucket=pass "+c.want)
			t.Logf("system-id: %s", m.Targets[0].Check(SystemID).Message)
			if len(m.Targets[0].Leftovers) != c.leftovers {
				t.Errorf("leftovers %v", m.Targets[0].Leftovers)
			}
			if left := store.Objects(); c.leftovers == 0 && len(left) != len(c.seed) {
				t.Errorf("objects left in the store: %v", left)
			}
			if n := store.Unfinished(); n != 0 {
				t.Errorf("%d multipart upload(s) neither completed nor aborted", n)
			}
		})
	}
}

const wal1 = "p/pg/wals/0000000100000000/000000010000000000000002.gz"

// realWAL in a seed stands for a real PostgreSQL 15 WAL segment (testdata/wal), of system
// fixtureSysID.
const realWAL = "\x00real WAL"

// doneInfo is a completed backup's backup.info of system id, needing WAL segment 2 only.
func doneInfo(id uint64) string {
	return fmt.Sprintf("status=DONE\nsystemid=%d\nbegin_wal=000000010000000000000002\nend_wal=000000010000000000000002\nbegin_time=2026-12-01 00:00:00+00:00\nend_time=2026-12-01 00:01:00+00:00\nbegin_xlog=0/2000028\nend_xlog=0/2000100\ntimeline=1\n", id)
}

// running is a Cluster that archives, of system id (status.systemID).
func running(id uint64) func(*manifest.Cluster) {
	return func(c *manifest.Cluster) {
		c.Status = &manifest.ClusterStatus{TimelineID: 1, SystemID: fmt.Sprint(id), Conditions: []manifest.Condition{{Type: "ContinuousArchiving", Status: "True"}}}
	}
}

// recovers bootstraps the Cluster from the source "peer".
func recovers(c *manifest.Cluster) {
	c.Spec.Bootstrap = &manifest.Bootstrap{Recovery: &manifest.Recovery{Source: "peer"}}
}

// demoted is a distributed topology's former primary: a replica (primary names the peer) that
// was bootstrapped with initdb, which CNPG only accepts for an existing Cluster.
func demoted(c *manifest.Cluster) {
	c.Spec.Replica = &manifest.ReplicaConfiguration{Self: "pg", Primary: "peer", Source: "peer"}
}

// TestCrossTargets: the self entry must name the backup destination (warn otherwise); a source
// that is the backup destination fails both.
func TestCrossTargets(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	d := memDriver{providertest.NewMemStore(ep)}
	for _, c := range []struct {
		name, role, server string
		wantBackup, want   string
	}{
		{"self names the backup destination", targets.RoleSelf, "pg", "config=pass", "config=pass *=skip"},
		{"self names another place", targets.RoleSelf, "elsewhere", "config=pass", "config=warn *=skip"},
		{"peer source is the backup destination", targets.RolePeerSource, "pg", "config=fail", "config=fail"},
		{"peer source elsewhere", targets.RolePeerSource, "peer", "config=pass", "config=pass"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, s := target(targets.RoleBackup, d), target(c.role, d)
			s.Cluster, s.ServerName, s.ID = b.Cluster, c.server, s.ID+"/x"
			m := Execute(context.Background(), []*targets.Target{b, s}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second, Offline: true})
			expect(t, m.Targets[0], c.wantBackup)
			expect(t, m.Targets[1], c.want)
			if c.name == "self names another place" && !strings.Contains(m.Targets[1].Checks[0].Message, "peers that restore from it would not find this Cluster's WAL") {
				t.Errorf("self warning: %s", m.Targets[1].Checks[0].Message)
			}
		})
	}
}

// Backup targets of different Clusters writing into one folder fail together, naming each other;
// a shared source, other serverNames and one Cluster's two backup targets do not.
func TestSharedDestinations(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	d := memDriver{providertest.NewMemStore(ep)}
	mk := func(cluster, role, server string) *targets.Target {
		tg := target(role, d)
		tg.Cluster = &manifest.Cluster{Meta: manifest.Meta{Name: cluster, Namespace: "db"}}
		tg.ID, tg.ServerName = "db/"+cluster+"/"+role, server
		return tg
	}
	a, b, c := mk("a", targets.RoleBackup, "pg"), mk("b", targets.RoleBackup, "pg"), mk("c", targets.RoleBackup, "other")
	sa, sb := mk("a", targets.RoleRecoverySource, "origin"), mk("b", targets.RoleRecoverySource, "origin")
	a2 := mk("a", targets.RoleBackup, "pg")
	a2.ID = "db/a/backup/plugin"
	m := Execute(context.Background(), []*targets.Target{a, b, c, sa, sb, a2}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second, Offline: true})
	for i, want := range []string{"config=fail", "config=fail", "config=pass", "config=pass", "config=pass", "config=fail"} {
		expect(t, m.Targets[i], want)
	}
	if msg := m.Targets[0].Checks[0].Message; !strings.Contains(msg, "db/b/backup") || strings.Contains(msg, "db/a/backup/plugin") || !strings.Contains(msg, `serverName "pg"`) {
		t.Errorf("a: %s", msg)
	}
	if msg := m.Targets[1].Checks[0].Message; !strings.Contains(msg, "2 other Cluster(s)") || !strings.Contains(msg, "db/a/backup, db/a/backup/plugin") {
		t.Errorf("b: %s", msg)
	}
}

// Every dependency names a check of the registry that comes earlier (so the per-target DAG has
// no cycle and no dangling edge), and every column of the matrix is a registry entry.
func TestRegistryEdges(t *testing.T) {
	pos := map[string]int{}
	for i, c := range Registry {
		if _, dup := pos[c.ID]; dup {
			t.Errorf("check %s registered twice", c.ID)
		}
		pos[c.ID] = i
	}
	for i, c := range Registry {
		for _, deps := range [][]string{c.Requires, c.RequiresOnWritable, c.After} {
			for _, d := range deps {
				if j, ok := pos[d]; !ok || j >= i {
					t.Errorf("%s depends on %q, which is not an earlier check", c.ID, d)
				}
			}
		}
	}
}

// Targets on one store share the large-part probe: only the first uploads the big part, the others
// a small single part, and a failure of the large part reaches them all.
func TestLargePartProbedOncePerStore(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	for _, bigFails := range []bool{false, true} {
		store := &sizeLimitStore{MemStore: providertest.NewMemStore(ep), refuseAbove: 1 << 30}
		if bigFails {
			store.refuseAbove = store.MinPartSize() - 1
		}
		d := storeDriver{memDriver{store.MemStore}, store}
		m := Execute(context.Background(), fleet(d, 5), Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second})
		want := "pass"
		if bigFails {
			want = "fail"
		}
		for _, tg := range m.Targets {
			expect(t, tg, "multipart="+want)
		}
		if n := store.big.Load(); n != 1 {
			t.Errorf("large part uploaded %d times, want once", n)
		}
	}
}

// fleet is n backup targets of servers pg-0 … pg-(n-1) on d.
func fleet(d providers.Driver, n int) []*targets.Target {
	var ts []*targets.Target
	for i := range n {
		tg := target(targets.RoleBackup, d)
		tg.ID = fmt.Sprintf("db/pg-%d/backup", i)
		tg.ServerName = fmt.Sprintf("pg-%d", i)
		ts = append(ts, tg)
	}
	return ts
}

// sizeLimitStore refuses multipart parts above refuseAbove bytes and counts large parts.
type sizeLimitStore struct {
	*providertest.MemStore
	refuseAbove int
	big         atomic.Int64
}

func (s *sizeLimitStore) StartMultipart(ctx context.Context, k string, parts [][]byte, o providers.PutOptions) (providers.Upload, error) {
	if len(parts) > 1 {
		s.big.Add(1) // the large-part upload: the store's minimum part size, then the small last part
	}
	for _, p := range parts[:len(parts)-1] {
		if len(p) > s.refuseAbove {
			return nil, &providers.Error{Op: "UploadPart", Kind: providers.KindOther, Status: 400, Msg: "UploadPart: part too large"}
		}
	}
	return s.MemStore.StartMultipart(ctx, k, parts, o)
}

// list warns about foreign entries in the server's folder (bounded, named), explains other
// servers' folders next to it, and warns when the destination path is itself a server's folder.
func TestListForeignEntries(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	for _, c := range []struct {
		name string
		seed []string
		want string
		msg  []string
	}{
		{"own folder only", []string{"p/pg/base/x/backup.info", "p/pg/wals/0000000100000000/000000010000000000000001"}, "list=pass", []string{"(base/, wals/)"}},
		{"foreign entries", []string{"p/pg/notes.txt", "p/pg/old/a", "p/pg/0\x1b[2Jy", "p/pg/base/x/backup.info", "p/pg/a1", "p/pg/a2", "p/pg/a3", "p/pg/a4"},
			"list=warn", []string{"7 foreign object(s) or folder(s) under p/pg/", "old/", `"0\x1b[2Jy"`, "and 2 more"}},
		{"other servers' folders", []string{"p/other/wals/a", "p/third/base/b"}, "list=pass", []string{"also holds 2 other folder(s), other servers' archives: other, third"}},
		{"destination path is a server's folder", []string{"p/wals/0000000100000000/000000010000000000000001"}, "list=warn", []string{"itself holds base/ and wals/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := providertest.NewMemStore(ep)
			for _, k := range c.seed {
				store.Put(context.Background(), k, []byte("x"), providers.PutOptions{})
			}
			d := memDriver{store}
			tg := target(targets.RoleBackup, d)
			tg.Cluster.Status = &manifest.ClusterStatus{Conditions: []manifest.Condition{{Type: "ContinuousArchiving", Status: "True"}}}
			m := Execute(context.Background(), []*targets.Target{tg}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second, ReadOnly: true})
			expect(t, m.Targets[0], c.want)
			got := m.Targets[0].Check(List).Message
			for _, w := range c.msg {
				if !strings.Contains(got, w) {
					t.Errorf("list message lacks %q: %s", w, got)
				}
			}
		})
	}
}

// The store's policies are the bucket's, and the destination path is shared by the servers in it:
// targets on one store (endpoint, bucket, identity) read each once, and each target weighs them
// for its own folder.
func TestStoreReadsOncePerStore(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	store := &countingStore{MemStore: providertest.NewMemStore(ep), lists: map[string]int{}}
	// a lifecycle rule expiring the WAL files of pg-1 only
	store.Policy = providers.Policies{Rules: []providers.LifecycleRule{{ID: "wal", Prefix: "p/pg-1/wals/", Enabled: true, ExpireDays: 7}}}
	d := storeDriver{memDriver{store.MemStore}, store}
	for i := range 5 {
		store.Put(context.Background(), fmt.Sprintf("p/pg-%d/base/20260101T000000/backup.info", i), []byte("x"), providers.PutOptions{})
	}
	m := Execute(context.Background(), fleet(d, 5), Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second})
	for i, tg := range m.Targets {
		want := "store-policies=pass"
		if i == 1 {
			want = "store-policies=fail"
		}
		expect(t, tg, want)
		var others []string
		for j := range 5 {
			if j != i {
				others = append(others, fmt.Sprintf("pg-%d", j))
			}
		}
		if msg := tg.Check(List).Message; !strings.Contains(msg, "also holds 4 other folder(s), other servers' archives: "+strings.Join(others, ", ")) {
			t.Errorf("%s: list message does not name the 4 other servers: %s", tg.ID, msg)
		}
	}
	if n := store.policies.Load(); n != 1 {
		t.Errorf("policies read %d times by 5 targets on one store, want once", n)
	}
	if n := store.lists["p/"]; n != 1 {
		t.Errorf("the destination path p/ listed %d times by 5 targets on one store, want once", n)
	}
}

// countingStore counts the reads that are made once per store.
type countingStore struct {
	*providertest.MemStore
	policies atomic.Int64
	mu       sync.Mutex
	lists    map[string]int // List calls by prefix
}

func (s *countingStore) Policies(ctx context.Context) (providers.Policies, error) {
	s.policies.Add(1)
	return s.MemStore.Policies(ctx)
}

func (s *countingStore) List(ctx context.Context, prefix, delimiter string, max int) (providers.Listing, error) {
	s.mu.Lock()
	s.lists[prefix]++
	s.mu.Unlock()
	return s.MemStore.List(ctx, prefix, delimiter, max)
}
