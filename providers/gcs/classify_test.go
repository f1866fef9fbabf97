package gcs

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// gcsReply is one canned answer of the JSON API (or of the XML API for object reads).
type gcsReply struct {
	status int
	reason string
	msg    string
}

// fakeGCS answers by operation: GetBucket, ListObjects, InsertObject, ReadObject (XML API),
// ObjectAttrs, DeleteObject. Operations without an entry succeed.
type fakeGCS struct {
	*httptest.Server
	mu      sync.Mutex
	replies map[string]gcsReply
	calls   map[string]int
}

func gcsOp(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/upload/storage/v1/b/bucket/o"):
		return "InsertObject"
	case p == "/storage/v1/b/bucket":
		return "GetBucket"
	case p == "/storage/v1/b/bucket/o":
		return "ListObjects"
	case strings.HasPrefix(p, "/storage/v1/b/bucket/o/") && r.Method == http.MethodDelete:
		return "DeleteObject"
	case strings.HasPrefix(p, "/storage/v1/b/bucket/o/"):
		return "ObjectAttrs"
	case strings.HasPrefix(p, "/bucket/"):
		return "ReadObject"
	}
	return r.Method + " " + p
}

func newFakeGCS(t *testing.T, replies map[string]gcsReply) *fakeGCS {
	t.Helper()
	f := &fakeGCS{replies: replies, calls: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := gcsOp(r)
		f.mu.Lock()
		f.calls[op]++
		rp, ok := f.replies[op]
		f.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			w.WriteHeader(rp.status)
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": rp.status, "message": rp.msg,
				"errors": []map[string]string{{"reason": rp.reason, "message": rp.msg, "domain": "global"}}}})
			w.Write(b)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		switch op {
		case "GetBucket":
			w.Write([]byte(`{"kind":"storage#bucket","name":"bucket","id":"bucket"}`))
		case "ListObjects":
			w.Write([]byte(`{"kind":"storage#objects","items":[{"kind":"storage#object","name":"prefix/pg/a","bucket":"bucket","size":"3"}],"prefixes":["prefix/pg/wals/"]}`))
		case "InsertObject", "ObjectAttrs":
			// the writer verifies the CRC32C the store computed of what it received ("data")
			w.Write([]byte(`{"kind":"storage#object","name":"prefix/pg/k","bucket":"bucket","size":"4","crc32c":"` + crc32cOf("data") + `"}`))
		case "ReadObject":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte("data"))
		case "DeleteObject":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "unexpected "+op, http.StatusTeapot)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGCS) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func crc32cOf(s string) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.Checksum([]byte(s), crc32.MakeTable(crc32.Castagnoli)))
	return base64.StdEncoding.EncodeToString(b[:])
}

// serviceAccountJSON returns a real-looking service-account key and its private_key value.
func serviceAccountJSON(t *testing.T) ([]byte, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pk := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": "0123456789abcdef",
		"private_key": pk, "client_email": "backup@proj.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": "https://oauth2.googleapis.com/token",
	})
	return b, pk
}

// connectGCS builds the Store the way the checks do against the fake server as an emulator:
// gkeEnvironment (no credentials), or a service-account key when sa is not nil.
func connectGCS(t *testing.T, srv *fakeGCS, sa []byte) *Store {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	d := Driver{EmulatorHost: u.Host}
	g := &manifest.GoogleCredentials{GKEEnvironment: true}
	if sa != nil {
		g = &manifest.GoogleCredentials{ApplicationCredentials: &manifest.SecretKeySelector{Name: "gcs", Key: "key.json"}}
	}
	tg := &providers.Target{
		Conf:       &manifest.BarmanObjectStore{DestinationPath: "gs://bucket/prefix/", GoogleCredentials: g},
		Field:      "spec.backup.barmanObjectStore",
		Namespace:  "db",
		ServerName: "pg",
		Env:        map[string]string{},
		Secret: func(_ context.Context, name, key string) ([]byte, error) {
			if name != "gcs" || key != "key.json" {
				return nil, providers.SecretNotFound("db", name)
			}
			return sa, nil
		},
	}
	loc, fs := d.Validate(tg)
	if len(fs) > 0 {
		t.Fatalf("Validate: %v", fs)
	}
	if loc.Bucket != "bucket" || loc.Base() != "prefix/pg/" || loc.Endpoint.String() != srv.URL {
		t.Fatalf("location %+v", loc)
	}
	n, err := providers.NewNet(nil, providers.NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	st, identity, fs := d.Connect(context.Background(), tg, loc, n)
	if len(fs) > 0 || st == nil {
		t.Fatalf("Connect: %v", fs)
	}
	want := "default credentials (GKE workload identity); emulator at " + u.Host + " (no credentials checked)"
	if sa != nil {
		want = "service account backup@proj.iam.gserviceaccount.com; emulator at " + u.Host + " (no credentials checked)"
	}
	if identity != want {
		t.Errorf("identity %q, want %q", identity, want)
	}
	return st.(*Store)
}

// asGCSError asserts err is a *providers.Error quoting no part of the private key.
func asGCSError(t *testing.T, err error, privateKey string) *providers.Error {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var e *providers.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v is not a *providers.Error", err, err)
	}
	if privateKey != "" {
		forms := []string{privateKey}
		for _, l := range strings.Split(privateKey, "\n") {
			if len(l) > 16 && !strings.HasPrefix(l, "-----") {
				forms = append(forms, l) // every line of key material
			}
		}
		for name, text := range map[string]string{"Error()": err.Error(), "Msg": e.Msg, "Fix": e.Fix} {
			for _, f := range forms {
				if strings.Contains(text, f) {
					t.Errorf("%s quotes the private key: %.120s…", name, text)
					break
				}
			}
		}
	}
	return e
}

func TestGCSClassify(t *testing.T) {
	t.Parallel()
	const (
		grant = "grant the service account roles/storage.objectAdmin on the bucket"
		check = "check the service-account key in the referenced Secret"
	)
	cases := []struct {
		name   string
		reply  map[string]gcsReply
		run    func(ctx context.Context, s *Store) error
		op     string
		kind   providers.Kind
		code   string
		status int
		msg    string
		fix    string // substring; "" means none
	}{
		{"bucket forbidden", map[string]gcsReply{"GetBucket": {403, "forbidden", "backup@proj.iam.gserviceaccount.com does not have storage.buckets.get access to the Google Cloud Storage bucket."}},
			func(ctx context.Context, s *Store) error { return s.CheckBucket(ctx) },
			"GetBucket", providers.KindDenied, "forbidden", 403, "GetBucket: 403 Forbidden (backup@proj.iam.gserviceaccount.com does not have storage.buckets.get access to the Google Cloud Storage bucket.)", grant},
		{"bucket missing", map[string]gcsReply{"GetBucket": {404, "notFound", "The specified bucket does not exist."}},
			func(ctx context.Context, s *Store) error { return s.CheckBucket(ctx) },
			"GetBucket", providers.KindNotFound, "", 404, "GetBucket: 404 Not Found (bucket does not exist)", `create the bucket "bucket" before enabling backups`},
		{"bucket unauthorized", map[string]gcsReply{"GetBucket": {401, "required", "Anonymous caller does not have storage.buckets.get access."}},
			func(ctx context.Context, s *Store) error { return s.CheckBucket(ctx) },
			"GetBucket", providers.KindAuth, "required", 401, "GetBucket: 401 Unauthorized (Anonymous caller does not have storage.buckets.get access.)", check},
		{"insert forbidden", map[string]gcsReply{"InsertObject": {403, "forbidden", "backup@proj.iam.gserviceaccount.com does not have storage.objects.create access."}},
			func(ctx context.Context, s *Store) error {
				return s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{})
			},
			"InsertObject", providers.KindDenied, "forbidden", 403, "InsertObject: 403 Forbidden (backup@proj.iam.gserviceaccount.com does not have storage.objects.create access.)", grant},
		{"insert unauthorized", map[string]gcsReply{"InsertObject": {401, "authError", "Invalid Credentials"}},
			func(ctx context.Context, s *Store) error {
				return s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{})
			},
			"InsertObject", providers.KindAuth, "authError", 401, "InsertObject: 401 Unauthorized (Invalid Credentials)", check},
		{"list forbidden", map[string]gcsReply{"ListObjects": {403, "forbidden", "no storage.objects.list access"}},
			func(ctx context.Context, s *Store) error { _, err := s.List(ctx, "prefix/pg/", "/", 10); return err },
			"ListObjects", providers.KindDenied, "forbidden", 403, "ListObjects: 403 Forbidden (no storage.objects.list access)", grant},
		{"delete forbidden", map[string]gcsReply{"DeleteObject": {403, "forbidden", "no storage.objects.delete access"}},
			func(ctx context.Context, s *Store) error { return s.Delete(ctx, "prefix/pg/k") },
			"DeleteObject", providers.KindDenied, "forbidden", 403, "DeleteObject: 403 Forbidden (no storage.objects.delete access)", grant},
		{"delete missing object", map[string]gcsReply{"DeleteObject": {404, "notFound", "No such object: bucket/prefix/pg/k"}},
			func(ctx context.Context, s *Store) error { return s.Delete(ctx, "prefix/pg/k") },
			"DeleteObject", providers.KindNotFound, "", 404, "DeleteObject: 404 Not Found (object does not exist)", ""},
		{"read forbidden (XML API)", map[string]gcsReply{"ReadObject": {403, "forbidden", "no storage.objects.get access"}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			"GetObject", providers.KindDenied, "", 403, "GetObject: 403 Forbidden (Forbidden)", grant},
		{"read missing object (XML API)", map[string]gcsReply{"ReadObject": {404, "notFound", "No such object"}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			"GetObject", providers.KindNotFound, "", 404, "GetObject: 404 Not Found (object does not exist)", ""},
		{"attrs forbidden", map[string]gcsReply{"ObjectAttrs": {403, "forbidden", "no storage.objects.get access"}},
			func(ctx context.Context, s *Store) error { _, err := s.Exists(ctx, "prefix/pg/k"); return err },
			"GetObject", providers.KindDenied, "forbidden", 403, "GetObject: 403 Forbidden (no storage.objects.get access)", grant},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeGCS(t, c.reply)
			s := connectGCS(t, srv, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e := asGCSError(t, c.run(ctx, s), "")
			if e.Op != c.op || e.Kind != c.kind || e.Code != c.code || e.Status != c.status || e.Msg != c.msg {
				t.Errorf("got op %q kind %q code %q status %d msg %q\nwant   %q %q %q %d %q", e.Op, e.Kind, e.Code, e.Status, e.Msg, c.op, c.kind, c.code, c.status, c.msg)
			}
			if c.fix == "" && e.Fix != "" || !strings.Contains(e.Fix, c.fix) {
				t.Errorf("Fix %q, want %q", e.Fix, c.fix)
			}
			for op, n := range srv.calls {
				if n != 1 {
					t.Errorf("%s called %d times: a %d must not be retried", op, n, c.status)
				}
			}
		})
	}
}

func TestGCSSuccess(t *testing.T) {
	t.Parallel()
	srv := newFakeGCS(t, nil)
	s := connectGCS(t, srv, nil)
	ctx := context.Background()
	if err := s.CheckBucket(ctx); err != nil {
		t.Fatalf("CheckBucket: %v", err)
	}
	l, err := s.List(ctx, "prefix/pg/", "/", 10)
	if err != nil || len(l.Keys) != 1 || l.Keys[0].Key != "prefix/pg/a" || l.Keys[0].Size != 3 || len(l.Prefixes) != 1 {
		t.Fatalf("List: %+v %v", l, err)
	}
	if err := s.Put(ctx, "prefix/pg/k", []byte("data"), providers.PutOptions{Tags: map[string]string{"a": "b"}}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if b, err := s.Get(ctx, "prefix/pg/k", 1024); err != nil || string(b) != "data" {
		t.Fatalf("Get: %q %v", b, err)
	}
	if ok, err := s.Exists(ctx, "prefix/pg/k"); !ok || err != nil {
		t.Fatalf("Exists: %v %v", ok, err)
	}
	if err := s.Delete(ctx, "prefix/pg/k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	srv2 := newFakeGCS(t, map[string]gcsReply{"ObjectAttrs": {404, "notFound", "No such object"}})
	s2 := connectGCS(t, srv2, nil)
	if ok, err := s2.Exists(ctx, "prefix/pg/k"); ok || err != nil {
		t.Fatalf("Exists on 404 = %v, %v; want false, nil", ok, err)
	}
}

// With a service-account key, errors never quote its private_key, even when the server echoes it.
func TestGCSServiceAccountKeyNeverQuoted(t *testing.T) {
	t.Parallel()
	sa, pk := serviceAccountJSON(t)
	flat := strings.ReplaceAll(pk, "\n", "")
	cases := []struct {
		name, echo string
	}{
		{"verbatim", "invalid key " + pk},
		{"key first", pk},
		{"key alone", strings.TrimSpace(pk)},
	}
	testKeyEchoes(t, sa, pk, flat, cases)
}

// The Redactor knows the private_key only as registered (and URL-escaped): the same key re-flowed
// on one line, or JSON-escaped, is not recognised.
func TestGCSServiceAccountKeyReflowedNeverQuoted(t *testing.T) {
	t.Parallel()
	sa, pk := serviceAccountJSON(t)
	flat := strings.ReplaceAll(pk, "\n", "")
	escaped, _ := json.Marshal(pk)
	testKeyEchoes(t, sa, pk, flat, []struct{ name, echo string }{
		{"key on one line", "invalid key " + flat},
		{"JSON-escaped key", "invalid credentials " + string(escaped)},
	})
}

func testKeyEchoes(t *testing.T, sa []byte, pk, flat string, cases []struct{ name, echo string }) {
	for _, c := range cases {
		for _, op := range []string{"GetBucket", "InsertObject"} {
			t.Run(c.name+"/"+op, func(t *testing.T) {
				t.Parallel()
				for _, status := range []int{401, 403} {
					srv := newFakeGCS(t, map[string]gcsReply{op: {status, "forbidden", c.echo}})
					s := connectGCS(t, srv, sa)
					var err error
					if op == "GetBucket" {
						err = s.CheckBucket(context.Background())
					} else {
						err = s.Put(context.Background(), "prefix/pg/k", []byte("x"), providers.PutOptions{})
					}
					e := asGCSError(t, err, pk)
					if e.Status != status || (status == 401) != (e.Kind == providers.KindAuth) {
						t.Errorf("status %d kind %q", e.Status, e.Kind)
					}
					if strings.Contains(e.Msg, flat[40:80]) {
						t.Errorf("Msg quotes key material: %.160s", e.Msg)
					}
				}
			})
		}
	}
}

func TestGCSNetwork(t *testing.T) {
	t.Parallel()
	srv := newFakeGCS(t, nil)
	s := connectGCS(t, srv, nil)
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := asGCSError(t, s.Delete(ctx, "prefix/pg/k"), "")
	if e.Kind != providers.KindNetwork || !strings.Contains(e.Msg, "connection refused") {
		t.Errorf("got kind %q msg %q", e.Kind, e.Msg)
	}
}
