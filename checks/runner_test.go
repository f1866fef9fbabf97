package checks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// memStore is an in-memory Store for the runner's logic (the real stores are tested against real
// servers in integration/); deny makes operations fail as "access denied".
type memStore struct {
	mu       sync.Mutex
	objs     map[string][]byte
	deny     map[string]bool // Put, Delete, Multipart
	endpoint *url.URL        // a real loopback HTTP server, for the endpoint check
}

func (m *memStore) Endpoint() *url.URL                    { return m.endpoint }
func (m *memStore) MinPartSize() int                      { return 16 }
func (m *memStore) CheckBucket(ctx context.Context) error { return nil }
func (m *memStore) List(_ context.Context, prefix, _ string, _ int) (providers.Listing, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var l providers.Listing
	for k, v := range m.objs {
		if strings.HasPrefix(k, prefix) {
			l.Keys = append(l.Keys, providers.Object{Key: k, Size: int64(len(v))})
		}
	}
	return l, nil
}
func denied(op string) error {
	return &providers.Error{Op: op, Kind: providers.KindDenied, Msg: op + ": denied"}
}
func (m *memStore) Put(_ context.Context, k string, d []byte, _ providers.PutOptions) error {
	if m.deny["Put"] {
		return denied("Put")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[k] = d
	return nil
}
func (m *memStore) Get(_ context.Context, k string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.objs[k]; ok {
		return v, nil
	}
	return nil, &providers.Error{Kind: providers.KindNotFound, Msg: "not found"}
}
func (m *memStore) Delete(_ context.Context, k string) error {
	if m.deny["Delete"] {
		return denied("Delete")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, k)
	return nil
}
func (m *memStore) Exists(_ context.Context, k string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objs[k]
	return ok, nil
}

type memUpload struct {
	m   *memStore
	key string
}

func (u memUpload) Complete(context.Context) error {
	return u.m.Put(context.Background(), u.key, []byte("mp"), providers.PutOptions{})
}
func (u memUpload) Abort(context.Context) error { return nil }
func (m *memStore) StartMultipart(_ context.Context, k string, _ [][]byte, _ providers.PutOptions) (providers.Upload, error) {
	if m.deny["Multipart"] {
		return nil, denied("CreateMultipartUpload")
	}
	return memUpload{m, k}, nil
}

type memDriver struct{ store *memStore }

func (d memDriver) Validate(t *providers.Target) (providers.Location, []providers.Finding) {
	return providers.Location{Provider: "s3", Bucket: "b", Prefix: "p", ServerName: t.ServerName, Endpoint: d.store.Endpoint()}, nil
}
func (d memDriver) CA(*providers.Target) ([]byte, []providers.Finding) { return nil, nil }
func (d memDriver) Connect(context.Context, *providers.Target, providers.Location, *providers.Net) (providers.Store, string, []providers.Finding) {
	return d.store, "memory", nil
}

func target(role string) *targets.Target {
	c := &manifest.Cluster{Meta: manifest.Meta{Name: "pg", Namespace: "db"}}
	conf := &manifest.BarmanObjectStore{DestinationPath: "s3://b/p", S3Credentials: &manifest.S3Credentials{InheritFromIAMRole: true}}
	return &targets.Target{ID: "db/pg/" + role, Cluster: c, Role: role, Field: "f", Conf: conf, ServerName: "pg", Env: map[string]string{}}
}

func statuses(tg *report.Target) string {
	var s []string
	for _, c := range tg.Checks {
		s = append(s, c.ID+"="+string(c.Status))
	}
	return strings.Join(s, " ")
}

// TestRunnerWithMemoryStore checks the runner's logic (prerequisites, read-only sources, cleanup)
// on an in-memory store; the real stores are covered against real servers in integration/.
func TestRunnerWithMemoryStore(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	const head = "config=pass credentials=pass endpoint=pass "
	for _, c := range []struct {
		name      string
		role      string
		deny      map[string]bool
		want      string
		leftovers int
	}{
		{"all pass", targets.RoleBackup, nil, head + "bucket=pass list=pass write=pass read=pass delete=pass multipart=pass backups=skip wal-archive=pass", 0},
		{"write denied", targets.RoleBackup, map[string]bool{"Put": true, "Multipart": true}, head + "bucket=pass list=pass write=fail read=skip delete=skip multipart=fail backups=skip wal-archive=pass", 0},
		{"delete denied", targets.RoleBackup, map[string]bool{"Delete": true}, head + "bucket=pass list=pass write=pass read=pass delete=fail multipart=pass backups=skip wal-archive=pass", 1},
		{"source is read-only", targets.RoleRecoverySource, nil, head + "bucket=pass list=pass write=skip read=skip delete=skip multipart=skip backups=fail wal-archive=fail", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := &memStore{objs: map[string][]byte{}, deny: c.deny, endpoint: ep}
			providers.Register("s3", memDriver{store})
			m := Execute(context.Background(), []*targets.Target{target(c.role)}, Options{Timeout: 5 * time.Second})
			if got := statuses(m.Targets[0]); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if len(m.Targets[0].Leftovers) != c.leftovers {
				t.Errorf("leftovers %v", m.Targets[0].Leftovers)
			}
			if c.leftovers == 0 && len(store.objs) != 0 {
				t.Errorf("objects left in the store: %v", store.objs)
			}
		})
	}
}
