package checks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

func TestJudgePolicies(t *testing.T) {
	const base = "prod/pg/"
	d := providers.Days
	for _, c := range []struct {
		name    string
		p       providers.Policies
		rp      string
		written bool
		want    []string // substrings of the findings ("fail: " / "warn: "), each must appear
		none    bool     // no finding at all
	}{
		{"nothing set", providers.Policies{}, "30d", true, nil, true},
		{"versioning without noncurrent expiration", providers.Policies{Versioning: "Enabled"}, "30d", true, []string{"warn: versioning is on and no lifecycle rule expires noncurrent versions under prod/pg/"}, false},
		{"versioning with noncurrent expiration", providers.Policies{Versioning: "Enabled", Rules: []providers.LifecycleRule{{Enabled: true, NoncurrentDays: 7}}}, "30d", true, nil, true},
		{"versioning with a noncurrent rule elsewhere", providers.Policies{Versioning: "Enabled", Rules: []providers.LifecycleRule{{Enabled: true, Prefix: "other/", NoncurrentDays: 7}}}, "30d", true, []string{"warn: versioning is on"}, false},
		{"versioning and object lock", providers.Policies{Versioning: "Enabled", ObjectLock: true}, "30d", true, []string{"warn: versioning with Object Lock: barman-cloud's deletes (retention, barman-cloud-backup-delete) only add delete markers"}, false},
		{"default retention longer than retentionPolicy", providers.Policies{Versioning: "Enabled", ObjectLock: true, LockMode: "GOVERNANCE", DefaultRetention: d(60), Rules: []providers.LifecycleRule{{Enabled: true, NoncurrentDays: 1}}}, "30d",
			true, []string{"warn: Object Lock default retention GOVERNANCE of 60 days is longer than retentionPolicy 30d (rp): the versions of backups retention deletes stay locked (and billed) for up to 30 days more"}, false},
		{"default retention within retentionPolicy", providers.Policies{ObjectLock: true, DefaultRetention: d(20)}, "1m", true, nil, true},
		{"expiration shorter than retentionPolicy", providers.Policies{Rules: []providers.LifecycleRule{{ID: "exp", Enabled: true, Prefix: "prod/", ExpireDays: 14}}}, "30d", true, []string{"fail: lifecycle rule exp on prefix \"prod/\" expires objects under prod/pg/ after 14 days, while retentionPolicy 30d"}, false},
		{"expiration with a month policy", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, ExpireDays: 31}}}, "1m", true, []string{"fail: lifecycle rule on the whole bucket expires objects"}, false},
		{"expiration without a retentionPolicy", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, ExpireDays: 365}}}, "", true, []string{"fail: ", "no retentionPolicy (barman-cloud keeps every backup and WAL)"}, false},
		{"expiration longer than retentionPolicy", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, ExpireDays: 60}}}, "30d", true, []string{"warn: lifecycle rule on the whole bucket expires objects under prod/pg/ after 60 days, beyond retentionPolicy 30d"}, false},
		{"any rule on wals/", providers.Policies{Rules: []providers.LifecycleRule{{ID: "w", Enabled: true, Prefix: "prod/pg/wals/", ExpireDays: 400}}}, "30d", true, []string{"fail: lifecycle rule w on prefix \"prod/pg/wals/\" acts on WAL files under prod/pg/wals/ (expires them after 400 days)"}, false},
		{"a transition on wals/", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, Prefix: "prod/pg/wals/0000", TransitionDays: 3, TransitionClass: "STANDARD_IA"}}}, "30d", true, []string{"fail: ", "moves them to STANDARD_IA after 3 days"}, false},
		{"a rule with a tag condition on wals/ only warns", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, Prefix: "prod/pg/wals/", Filtered: true, ExpireDays: 3}}}, "30d", true, []string{"warn: lifecycle rule on prefix \"prod/pg/wals/\" (with tag or size conditions) acts on WAL files"}, false},
		{"disabled rule", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: false, ExpireDays: 1}}}, "30d", true, nil, true},
		{"rule on another server", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, Prefix: "prod/other/", ExpireDays: 1}}}, "30d", true, nil, true},
		{"transition to a cold tier", providers.Policies{Rules: []providers.LifecycleRule{{ID: "cold", Enabled: true, TransitionDays: 90, TransitionClass: "DEEP_ARCHIVE", NeedsRestore: true}}}, "30d", true, []string{"warn: lifecycle rule cold on the whole bucket moves objects under prod/pg/ to DEEP_ARCHIVE after 90 days: objects there must be restored"}, false},
		{"transition readable directly", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, TransitionDays: 30, TransitionClass: "COLDLINE"}}}, "30d", true, nil, true},
		{"GCS retention policy", providers.Policies{DefaultRetention: d(90), LocksOverwrites: true, LockMode: "locked"}, "30d", true, []string{"fail: the bucket retention policy locked keeps every object for 90 days from being overwritten or deleted: barman-cloud ≥ 3.19 writes backup.info twice"}, false},
		{"GCS event-based hold", providers.Policies{EventBasedHold: true, LocksOverwrites: true}, "30d", true, []string{"fail: the bucket puts a default event-based hold on every new object"}, false},
		{"Azure legal hold", providers.Policies{LegalHold: true, LocksOverwrites: true}, "30d", true, []string{"fail: the container has a legal hold: blobs can be created but neither overwritten nor deleted"}, false},
		{"Azure soft delete of 30 days", providers.Policies{SoftDelete: d(30)}, "30d", true, []string{"warn: soft delete keeps every deleted object for 30 days"}, false},
		{"soft delete of 7 days", providers.Policies{SoftDelete: d(7)}, "30d", true, nil, true},
		{"unread with a permission", providers.Policies{Unread: []providers.Unread{{Setting: "lifecycle rules", Permission: "s3:GetLifecycleConfiguration on arn:aws:s3:::b", Msg: "GetBucketLifecycleConfiguration: 403 Forbidden\x1b[31m"}}}, "30d", true,
			[]string{"warn: could not read the lifecycle rules (GetBucketLifecycleConfiguration: 403 Forbidden", "needs s3:GetLifecycleConfiguration on arn:aws:s3:::b"}, false},
		{"unsupported setting", providers.Policies{Unread: []providers.Unread{{Setting: "lifecycle rules", Msg: "not offered"}}}, "30d", true, nil, true},
		{"a source: only what breaks reading", providers.Policies{Versioning: "Enabled", ObjectLock: true, LocksOverwrites: true, DefaultRetention: d(90), Rules: []providers.LifecycleRule{{Enabled: true, ExpireDays: 3}}}, "", false, []string{"warn: lifecycle rule on the whole bucket expires objects"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, notes := judgePolicies(c.p, base, c.rp, "rp", c.written)
			got := strings.Join(providertest.Findings(fs), "\n")
			if strings.ContainsRune(got, '\x1b') {
				t.Errorf("an escape reaches the message: %q", got)
			}
			if c.none && got != "" {
				t.Errorf("findings:\n%s", got)
			}
			if !c.written && strings.Contains(got, "fail: ") {
				t.Errorf("a source fails on a policy: %s", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("findings:\n%s\nnotes: %v\nwant %q", got, notes, w)
				}
			}
		})
	}
}

func TestRetentionDays(t *testing.T) {
	for in, want := range map[string]int{"30d": 30, "4w": 28, "3m": 93, "": 0, "x": 0, "0d": 0} {
		if got := retentionDays(in); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
}

// The runner with store policies: a locked bucket gets no probe object (it could not be removed),
// a store refusing overwrites fails overwrite, the retention policy comes from the Cluster.
func TestRunnerStorePolicies(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	for _, c := range []struct {
		name     string
		policy   providers.Policies
		deny     map[string]bool
		readOnly bool
		want     string
		msg      string // in store-policies' message
	}{
		{"plain bucket", providers.Policies{}, nil, false, "backups=skip *=pass", "no versioning, lock, hold or lifecycle rule"},
		{"retention-locked bucket: no probe object", providers.Policies{LocksOverwrites: true, DefaultRetention: providers.Days(90)}, nil, false,
			"store-policies=fail list=pass write=skip read=skip overwrite=skip delete=skip multipart=skip wal-archive=pass", "barman-cloud ≥ 3.19 writes backup.info twice"},
		{"expiration shorter than the Cluster's retentionPolicy", providers.Policies{Rules: []providers.LifecycleRule{{Enabled: true, ExpireDays: 7}}}, nil, false,
			"store-policies=fail write=pass overwrite=pass delete=pass", "while retentionPolicy 30d (spec.backup.retentionPolicy)"},
		{"policies unreadable", providers.Policies{}, map[string]bool{"Policies": true}, false, "store-policies=warn write=pass overwrite=pass", "needs mem:GetPolicies"},
		{"--read-only reads the policies", providers.Policies{Versioning: "Enabled"}, nil, true, "store-policies=warn write=skip overwrite=skip", "versioning is on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := providertest.NewMemStore(ep)
			store.Policy, store.Deny = c.policy, c.deny
			d := memDriver{store}
			tg := target(targets.RoleBackup, d)
			tg.Cluster.Spec.Backup = &manifest.BackupConfiguration{BarmanObjectStore: tg.Conf, RetentionPolicy: "30d"}
			m := Execute(context.Background(), []*targets.Target{tg}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second, ReadOnly: c.readOnly})
			expect(t, m.Targets[0], c.want)
			if sp := m.Targets[0].Check(StorePolicies); sp == nil || !strings.Contains(sp.Message, c.msg) {
				t.Errorf("store-policies: %+v", sp)
			}
			if len(store.Objects()) != 0 || len(m.Targets[0].Leftovers) != 0 {
				t.Errorf("left behind: %v %v", store.Objects(), m.Targets[0].Leftovers)
			}
		})
	}
	t.Run("overwrite refused", func(t *testing.T) {
		store := &overwriteRefusing{MemStore: providertest.NewMemStore(ep)}
		d := memDriver{store.MemStore}
		m := Execute(context.Background(), []*targets.Target{target(targets.RoleBackup, storeDriver{d, store})}, Options{Registry: providers.NewRegistry(storeDriver{d, store}), Timeout: 5 * time.Second})
		expect(t, m.Targets[0], "write=pass read=pass overwrite=fail delete=pass")
		if o := m.Targets[0].Check(Overwrite); o == nil || !strings.Contains(o.Message, "barman-cloud ≥ 3.19 writes backup.info twice") || !strings.Contains(o.Remediation, "allow overwriting") {
			t.Errorf("overwrite: %+v", o)
		}
		if len(store.Objects()) != 0 {
			t.Errorf("left behind: %v", store.Objects())
		}
	})
}

// overwriteRefusing refuses a Put on an existing key (a store that only creates).
type overwriteRefusing struct{ *providertest.MemStore }

func (s *overwriteRefusing) Put(ctx context.Context, k string, d []byte, o providers.PutOptions) error {
	if ok, _ := s.Exists(ctx, k); ok {
		return &providers.Error{Op: "PutObject", Kind: providers.KindDenied, Status: 409, Msg: "PutObject: 409 Conflict (BlobImmutableDueToPolicy)"}
	}
	return s.MemStore.Put(ctx, k, d, o)
}

// storeDriver is memDriver connecting to another Store.
type storeDriver struct {
	memDriver
	s providers.Store
}

func (d storeDriver) Connect(context.Context, *providers.Target, providers.Location, *providers.Net) (providers.Store, string, []providers.Finding) {
	return d.s, "memory", nil
}

func TestLifetimeFindings(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	if fs := certFindings(providers.EndpointReport{NotAfter: now.Add(90 * 24 * time.Hour)}, now); len(fs) != 0 {
		t.Errorf("findings %v", fs)
	}
	if fs := certFindings(providers.EndpointReport{}, now); len(fs) != 0 {
		t.Errorf("http://: %v", fs)
	}
	got := strings.Join(providertest.Findings(append(certFindings(providers.EndpointReport{NotAfter: now.Add(10 * 24 * time.Hour)}, now), skewFindings(-7*time.Minute)...)), "\n")
	for _, w := range []string{"warn: the endpoint's certificate expires on 2026-12-12T12:00:00Z (in 10 days)", "warn: the store's clock (its Date header) is 7m0s behind this machine's", "SigV4"} {
		if !strings.Contains(got, w) {
			t.Errorf("findings:\n%s\nwant %q", got, w)
		}
	}
	if fs := skewFindings(4 * time.Minute); len(fs) != 0 {
		t.Errorf("4 minutes: %v", fs)
	}
}

// The runner reads the store's clock from its answers: 20 minutes ahead warns in bucket.
func TestRunnerClockSkew(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(20*time.Minute).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	store := &httpStore{MemStore: providertest.NewMemStore(ep)}
	d := netDriver{memDriver{store.MemStore}, store}
	m := Execute(context.Background(), []*targets.Target{target(targets.RoleBackup, d)}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second})
	expect(t, m.Targets[0], "bucket=warn write=pass")
	if b := m.Targets[0].Check(Bucket); b == nil || !strings.Contains(b.Message, "the store's clock (its Date header) is 20m0s ahead of this machine's") {
		t.Errorf("bucket: %+v", b)
	}
}

// httpStore asks its endpoint once through the run's network stack when the bucket is checked.
type httpStore struct {
	*providertest.MemStore
	client *http.Client
}

func (s *httpStore) CheckBucket(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, s.Endpoint().String(), nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return s.MemStore.CheckBucket(ctx)
}

// netDriver connects an httpStore to the run's network stack.
type netDriver struct {
	memDriver
	s *httpStore
}

func (d netDriver) Connect(_ context.Context, _ *providers.Target, _ providers.Location, n *providers.Net) (providers.Store, string, []providers.Finding) {
	d.s.client = n.Client
	return d.s, "memory", nil
}
