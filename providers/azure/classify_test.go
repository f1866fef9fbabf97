package azure

import (
	"context"
	"errors"
	"fmt"
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

// The SAS signature is the secret: the fake server echoes it in its error messages.
const (
	testSig = "SECRETSIGa1b2c3d4e5f6+/="
	testSAS = "sv=2022-11-02&ss=b&srt=co&sp=racwdl&se=2099-01-01T00:00:00Z&sig=" + "SECRETSIGa1b2c3d4e5f6%2B%2F%3D"
)

// azReply is one canned Azure Blob answer.
type azReply struct {
	status int
	code   string // x-ms-error-code and XML Code; "" means no body and no header
	msg    string
}

// fakeAzure answers by operation: ListBlobs, PutBlob, PutBlock, GetBlob, GetBlobProperties,
// DeleteBlob. Operations without an entry succeed.
type fakeAzure struct {
	*httptest.Server
	mu      sync.Mutex
	replies map[string]azReply
	calls   map[string]int
	queries []string
}

func azOp(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Get("restype") == "container" && q.Get("comp") == "list":
		return "ListBlobs"
	case r.Method == http.MethodPut && q.Get("comp") == "block":
		return "PutBlock"
	case r.Method == http.MethodPut:
		return "PutBlob"
	case r.Method == http.MethodGet:
		return "GetBlob"
	case r.Method == http.MethodHead:
		return "GetBlobProperties"
	case r.Method == http.MethodDelete:
		return "DeleteBlob"
	}
	return r.Method + " " + r.URL.Path
}

func newFakeAzure(t *testing.T, replies map[string]azReply) *fakeAzure {
	t.Helper()
	f := &fakeAzure{replies: replies, calls: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := azOp(r)
		f.mu.Lock()
		f.calls[op]++
		f.queries = append(f.queries, r.URL.RawQuery)
		rp, ok := f.replies[op]
		f.mu.Unlock()
		w.Header().Set("x-ms-request-id", "00000000-0000-0000-0000-000000000000")
		w.Header().Set("x-ms-version", "2022-11-02")
		if ok {
			if rp.code == "" {
				w.WriteHeader(rp.status)
				return
			}
			w.Header().Set("x-ms-error-code", rp.code)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(rp.status)
			if r.Method != http.MethodHead {
				fmt.Fprintf(w, "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>%s</Code><Message>%s\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2024-01-01T00:00:00.0000000Z</Message></Error>", rp.code, rp.msg)
			}
			return
		}
		switch op {
		case "ListBlobs":
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1/devstoreaccount1" ContainerName="container"><Prefix>prefix/pg/</Prefix><MaxResults>1</MaxResults><Blobs /><NextMarker /></EnumerationResults>`)
		case "PutBlob", "PutBlock":
			w.WriteHeader(http.StatusCreated)
		case "GetBlob":
			w.Header().Set("Content-Length", "4")
			w.Write([]byte("data"))
		case "DeleteBlob":
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAzure) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// credential modes of the tests
const (
	viaConnectionString = "connection string"
	viaSASToken         = "storageSasToken"
)

// connectAzure builds the Store the way the checks do (Validate, NewNet, Connect) against the
// fake server as an emulator: http://127.0.0.1:PORT/devstoreaccount1/container/prefix.
func connectAzure(t *testing.T, srv *fakeAzure, mode string) *Store {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	values := map[string]string{
		"connectionString": "BlobEndpoint=" + srv.URL + "/devstoreaccount1;SharedAccessSignature=" + testSAS,
		"account":          "devstoreaccount1",
		"sas":              "?" + testSAS,
	}
	cr := &manifest.AzureCredentials{ConnectionString: &manifest.SecretKeySelector{Name: "az", Key: "connectionString"}}
	if mode == viaSASToken {
		cr = &manifest.AzureCredentials{StorageAccount: &manifest.SecretKeySelector{Name: "az", Key: "account"}, StorageSasToken: &manifest.SecretKeySelector{Name: "az", Key: "sas"}}
	}
	tg := &providers.Target{
		Conf:       &manifest.BarmanObjectStore{DestinationPath: "http://" + u.Host + "/devstoreaccount1/container/prefix", AzureCredentials: cr},
		Field:      "spec.backup.barmanObjectStore",
		Namespace:  "db",
		ServerName: "pg",
		Env:        map[string]string{},
		Secret: func(_ context.Context, name, key string) ([]byte, error) {
			v, ok := values[key]
			if name != "az" || !ok {
				return nil, providers.SecretKeyMissing("db", name, key)
			}
			return []byte(v), nil
		},
	}
	loc, fs := Driver{}.Validate(tg)
	switch mode {
	case viaConnectionString:
		if len(fs) > 0 {
			t.Fatalf("Validate: %v", fs)
		}
	case viaSASToken:
		// barman-cloud requires a connection string for an emulator: Validate says so, but the
		// store can still be opened and probed as configured.
		if len(fs) != 1 || !strings.Contains(fs[0].Msg, "requires a connection string") || fs[0].Field != "spec.backup.barmanObjectStore.azureCredentials" {
			t.Fatalf("Validate: %v", fs)
		}
	}
	if loc.Account != "devstoreaccount1" || loc.Bucket != "container" || loc.Base() != "prefix/pg/" {
		t.Fatalf("location %+v", loc)
	}
	n, err := providers.NewNet(nil, providers.NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	st, identity, fs := Driver{}.Connect(context.Background(), tg, loc, n)
	if len(fs) > 0 || st == nil {
		t.Fatalf("Connect: %v", fs)
	}
	if strings.Contains(identity, "SECRETSIG") {
		t.Errorf("identity leaks the signature: %q", identity)
	}
	if mode == viaSASToken && identity != "SAS token for account devstoreaccount1 (permissions racwdl)" {
		t.Errorf("identity %q", identity)
	}
	if mode == viaConnectionString && identity != "connection string" {
		t.Errorf("identity %q", identity)
	}
	if got := st.Endpoint().String(); got != srv.URL {
		t.Errorf("Endpoint() = %s, want %s", got, srv.URL)
	}
	return st.(*Store)
}

// asAzError asserts err is a *providers.Error with no trace of the SAS signature.
func asAzError(t *testing.T, err error) *providers.Error {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var e *providers.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v is not a *providers.Error", err, err)
	}
	for name, text := range map[string]string{"Error()": err.Error(), "Msg": e.Msg, "Fix": e.Fix} {
		for _, s := range []string{"SECRETSIG", testSig, url.QueryEscape(testSig)} {
			if strings.Contains(text, s) {
				t.Errorf("%s leaks the SAS signature: %s", name, text)
			}
		}
	}
	return e
}

// The server message carries the signature, as Azure's AuthenticationFailed does with the
// string to sign.
var sigEcho = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature. sig=" + testSig + " " + testSAS

func TestAzureClassify(t *testing.T) {
	t.Parallel()
	const (
		reader      = `assign the "Storage Blob Data Reader" role or better`
		contributor = `assign the "Storage Blob Data Contributor" role on the container`
	)
	cases := []struct {
		name   string
		reply  map[string]azReply
		run    func(ctx context.Context, s *Store) error
		op     string
		kind   providers.Kind
		code   string
		status int
		msg    string // exact Msg
		fix    []string
	}{
		{"list permission mismatch", map[string]azReply{"ListBlobs": {403, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission."}},
			func(ctx context.Context, s *Store) error { return s.CheckBucket(ctx) },
			"ListBlobs", providers.KindDenied, "AuthorizationPermissionMismatch", 403, "ListBlobs: 403 Forbidden (AuthorizationPermissionMismatch)", []string{reader, "add l, list, to the SAS permissions"}},
		{"list authentication failed", map[string]azReply{"ListBlobs": {403, "AuthenticationFailed", sigEcho}},
			func(ctx context.Context, s *Store) error { return s.CheckBucket(ctx) },
			"ListBlobs", providers.KindAuth, "AuthenticationFailed", 403, "ListBlobs: 403 Forbidden (AuthenticationFailed)", []string{"check the account key, SAS token or connection string"}},
		{"container not found", map[string]azReply{"ListBlobs": {404, "ContainerNotFound", "The specified container does not exist."}},
			func(ctx context.Context, s *Store) error { return s.CheckBucket(ctx) },
			"ListBlobs", providers.KindNotFound, "ContainerNotFound", 404, "ListBlobs: 404 Not Found (ContainerNotFound)", []string{`create the container "container" before enabling backups`}},
		{"list pages denied", map[string]azReply{"ListBlobs": {403, "AuthorizationPermissionMismatch", sigEcho}},
			func(ctx context.Context, s *Store) error { _, err := s.List(ctx, "prefix/pg/", "/", 10); return err },
			"ListBlobs", providers.KindDenied, "AuthorizationPermissionMismatch", 403, "ListBlobs: 403 Forbidden (AuthorizationPermissionMismatch)", []string{reader}},
		{"put permission mismatch", map[string]azReply{"PutBlob": {403, "AuthorizationPermissionMismatch", sigEcho}},
			func(ctx context.Context, s *Store) error {
				return s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{})
			},
			"PutBlob", providers.KindDenied, "AuthorizationPermissionMismatch", 403, "PutBlob: 403 Forbidden (AuthorizationPermissionMismatch)", []string{contributor, "add w, write, to the SAS permissions"}},
		{"get blob not found", map[string]azReply{"GetBlob": {404, "BlobNotFound", "The specified blob does not exist."}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			"GetBlob", providers.KindNotFound, "BlobNotFound", 404, "GetBlob: 404 Not Found (BlobNotFound)", nil},
		{"get permission mismatch", map[string]azReply{"GetBlob": {403, "AuthorizationPermissionMismatch", sigEcho}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			"GetBlob", providers.KindDenied, "AuthorizationPermissionMismatch", 403, "GetBlob: 403 Forbidden (AuthorizationPermissionMismatch)", []string{reader, "add r, read"}},
		{"delete permission mismatch", map[string]azReply{"DeleteBlob": {403, "AuthorizationPermissionMismatch", sigEcho}},
			func(ctx context.Context, s *Store) error { return s.Delete(ctx, "prefix/pg/k") },
			"DeleteBlob", providers.KindDenied, "AuthorizationPermissionMismatch", 403, "DeleteBlob: 403 Forbidden (AuthorizationPermissionMismatch)", []string{contributor, "add d, delete"}},
		{"delete authentication failed", map[string]azReply{"DeleteBlob": {403, "AuthenticationFailed", sigEcho}},
			func(ctx context.Context, s *Store) error { return s.Delete(ctx, "prefix/pg/k") },
			"DeleteBlob", providers.KindAuth, "AuthenticationFailed", 403, "DeleteBlob: 403 Forbidden (AuthenticationFailed)", []string{"check the account key, SAS token or connection string"}},
		{"properties forbidden without a code", map[string]azReply{"GetBlobProperties": {403, "", ""}},
			func(ctx context.Context, s *Store) error { _, err := s.Exists(ctx, "prefix/pg/k"); return err },
			"GetBlobProperties", providers.KindDenied, "", 403, "GetBlobProperties: 403 Forbidden (Forbidden)", []string{reader}},
		{"staged block refused", map[string]azReply{"PutBlock": {403, "AuthorizationPermissionMismatch", sigEcho}},
			func(ctx context.Context, s *Store) error {
				_, err := s.StartMultipart(ctx, "prefix/pg/k", [][]byte{[]byte("a"), []byte("b")}, providers.PutOptions{})
				return err
			},
			"PutBlock", providers.KindDenied, "AuthorizationPermissionMismatch", 403, "PutBlock: 403 Forbidden (AuthorizationPermissionMismatch)", []string{contributor}},
	}
	for _, mode := range []string{viaConnectionString, viaSASToken} {
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				srv := newFakeAzure(t, c.reply)
				s := connectAzure(t, srv, mode)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				e := asAzError(t, c.run(ctx, s))
				if e.Op != c.op || e.Kind != c.kind || e.Code != c.code || e.Status != c.status || e.Msg != c.msg {
					t.Errorf("got op %q kind %q code %q status %d msg %q\nwant   %q %q %q %d %q", e.Op, e.Kind, e.Code, e.Status, e.Msg, c.op, c.kind, c.code, c.status, c.msg)
				}
				if len(c.fix) == 0 && e.Fix != "" {
					t.Errorf("Fix %q, want none", e.Fix)
				}
				for _, f := range c.fix {
					if !strings.Contains(e.Fix, f) {
						t.Errorf("Fix %q lacks %q", e.Fix, f)
					}
				}
				// the signature did travel: the store authenticated with it
				srv.mu.Lock()
				defer srv.mu.Unlock()
				if len(srv.queries) == 0 || !strings.Contains(srv.queries[0], "sig=SECRETSIG") {
					t.Errorf("requests carried no SAS signature: %q", srv.queries)
				}
			})
		}
	}
}

func TestAzureSuccessAndExists(t *testing.T) {
	t.Parallel()
	srv := newFakeAzure(t, map[string]azReply{"GetBlobProperties": {404, "BlobNotFound", ""}})
	s := connectAzure(t, srv, viaConnectionString)
	ctx := context.Background()
	if err := s.CheckBucket(ctx); err != nil {
		t.Fatalf("CheckBucket: %v", err)
	}
	if err := s.Put(ctx, "prefix/pg/k", []byte("data"), providers.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if b, err := s.Get(ctx, "prefix/pg/k", 1024); err != nil || string(b) != "data" {
		t.Fatalf("Get: %q %v", b, err)
	}
	if ok, err := s.Exists(ctx, "prefix/pg/k"); ok || err != nil {
		t.Fatalf("Exists on 404 = %v, %v; want false, nil", ok, err)
	}
	if srv.count("ListBlobs") != 1 || srv.count("PutBlob") != 1 {
		t.Errorf("calls %v", srv.calls)
	}
}

// A 503 is retried (3 retries, delays of at most 2 s) and classified as throttling.
func TestAzureServerBusy(t *testing.T) {
	t.Parallel()
	srv := newFakeAzure(t, map[string]azReply{"PutBlob": {503, "ServerBusy", "The server is busy."}})
	s := connectAzure(t, srv, viaConnectionString)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	e := asAzError(t, s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{}))
	if ctx.Err() != nil {
		t.Fatal("retries did not finish within 12 s")
	}
	if e.Kind != providers.KindThrottled || e.Status != 503 || e.Code != "ServerBusy" {
		t.Errorf("got %+v", e)
	}
	if n := srv.count("PutBlob"); n != 4 {
		t.Errorf("%d attempts, want 4", n)
	}
}

func TestAzureNetworkErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	srv := newFakeAzure(t, nil)
	s := connectAzure(t, srv, viaSASToken)
	srv.Close()
	e := asAzError(t, s.CheckBucket(context.Background()))
	if e.Kind != providers.KindNetwork || !strings.Contains(e.Msg, "connection refused") {
		t.Errorf("got kind %q msg %q", e.Kind, e.Msg)
	}
	// The SDK's own error text carries the request URL with the signature: it is kept only in
	// Err (never printed), and the classified message does not quote it.
	if e.Err == nil || !strings.Contains(e.Err.Error(), "SECRETSIG") {
		t.Logf("note: the SDK error no longer carries the URL: %v", e.Err)
	}
}
