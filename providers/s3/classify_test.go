package s3

import (
	"context"
	"errors"
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
)

// Secret values the fake S3 server echoes back in its error messages: none may reach an error.
const (
	testAccessKeyID = "AKIATESTCLASSIFY01"
	testSecretKey   = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
	testToken       = "FwoGZXIvYXdzEXAMPLE/SESSION+TOKEN=="
)

// s3Reply is one canned S3 answer.
type s3Reply struct {
	status int
	code   string // XML Code; "" means no body
	msg    string
	hdr    map[string]string
}

func (rp s3Reply) write(w http.ResponseWriter) {
	for k, v := range rp.hdr {
		w.Header().Set(k, v)
	}
	w.Header().Set("x-amz-request-id", "REQ123")
	if rp.code == "" {
		w.WriteHeader(rp.status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(rp.status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><Resource>/bucket</Resource><RequestId>REQ123</RequestId></Error>`, rp.code, xmlEscape(rp.msg))
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

const emptyListing = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>prefix/pg/</Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`

// fakeS3 answers by operation: "HeadBucket", "ListObjectsV2", "PutObject", "GetObject",
// "HeadObject", "DeleteObject". Operations without an entry succeed (empty answers).
type fakeS3 struct {
	*httptest.Server
	mu      sync.Mutex
	replies map[string]s3Reply
	calls   map[string]int
	total   atomic.Int64
}

func s3Op(r *http.Request) string {
	key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"), "bucket")
	key = strings.TrimPrefix(key, "/")
	switch {
	case key == "" && r.Method == http.MethodHead:
		return "HeadBucket"
	case key == "" && r.Method == http.MethodGet:
		return "ListObjectsV2"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodGet:
		return "GetObject"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return r.Method + " " + r.URL.Path
}

func newFakeS3(t *testing.T, replies map[string]s3Reply) *fakeS3 {
	t.Helper()
	f := &fakeS3{replies: replies, calls: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.total.Add(1)
		op := s3Op(r)
		f.mu.Lock()
		f.calls[op]++
		rp, ok := f.replies[op]
		f.mu.Unlock()
		if ok {
			rp.write(w)
			return
		}
		switch op {
		case "ListObjectsV2":
			w.Header().Set("Content-Type", "application/xml")
			w.Write([]byte(emptyListing))
		case "GetObject":
			w.Write([]byte("data"))
		case "DeleteObject":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeS3) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// connect builds the Store the way the checks do: Validate, NewNet, Connect.
func connect(t *testing.T, endpoint string, withToken bool) *Store {
	t.Helper()
	cr := &manifest.S3Credentials{AccessKeyID: ref("s3-creds", "ACCESS_KEY_ID"), SecretAccessKey: ref("s3-creds", "ACCESS_SECRET_KEY")}
	if withToken {
		cr.SessionToken = ref("s3-creds", "SESSION_TOKEN")
	}
	values := map[string]string{"ACCESS_KEY_ID": testAccessKeyID, "ACCESS_SECRET_KEY": testSecretKey, "SESSION_TOKEN": testToken}
	tg := &providers.Target{
		Conf:       &manifest.BarmanObjectStore{DestinationPath: "s3://bucket/prefix", EndpointURL: endpoint, S3Credentials: cr},
		Field:      "spec.backup.barmanObjectStore",
		Namespace:  "db",
		ServerName: "pg",
		Env:        map[string]string{},
		Secret: func(_ context.Context, name, key string) ([]byte, error) {
			if name != "s3-creds" {
				return nil, providers.SecretNotFound("db", name)
			}
			v, ok := values[key]
			if !ok {
				return nil, providers.SecretKeyMissing("db", name, key)
			}
			return []byte(v), nil
		},
	}
	loc, fs := Driver{}.Validate(tg)
	if len(fs) > 0 {
		t.Fatalf("Validate: %v", fs)
	}
	if loc.Bucket != "bucket" || loc.Base() != "prefix/pg/" {
		t.Fatalf("location %+v", loc)
	}
	n, err := providers.NewNet(nil, providers.NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	st, identity, fs := Driver{}.Connect(context.Background(), tg, loc, n)
	if withToken { // a static session token: temporary credentials the Secret must rotate
		if len(fs) != 1 || fs[0].Severity != providers.Warn || !strings.Contains(fs[0].Msg, "ExpiredToken") || strings.Contains(fs[0].String(), testToken) {
			t.Fatalf("Connect with a session token: %v", fs)
		}
		fs = nil
	}
	if len(fs) > 0 || st == nil {
		t.Fatalf("Connect: %v", fs)
	}
	if strings.Contains(identity, testAccessKeyID) || !strings.HasPrefix(identity, "access key AKIA") {
		t.Errorf("identity %q must name a masked key id", identity)
	}
	if withToken && !strings.HasSuffix(identity, "with session token") {
		t.Errorf("identity %q", identity)
	}
	if got := st.Endpoint().String(); got != endpoint {
		t.Errorf("Endpoint() = %s, want %s", got, endpoint)
	}
	return st.(*Store)
}

// asError asserts err is a *providers.Error carrying no secret in anything printable.
func asError(t *testing.T, err error) *providers.Error {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var e *providers.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v is not a *providers.Error", err, err)
	}
	for _, s := range []string{testSecretKey, testToken, url.QueryEscape(testSecretKey), url.QueryEscape(testToken)} {
		for name, text := range map[string]string{"Error()": err.Error(), "Msg": e.Msg, "Fix": e.Fix} {
			if strings.Contains(text, s) {
				t.Errorf("%s leaks a secret: %s", name, text)
			}
		}
	}
	if strings.Contains(e.Msg, "\n") {
		t.Errorf("Msg spans lines: %q", e.Msg)
	}
	if err.Error() != e.Msg {
		t.Errorf("Error() %q != Msg %q", err.Error(), e.Msg)
	}
	return e
}

type s3Want struct {
	op     string
	kind   providers.Kind
	code   string
	status int
	msg    []string // substrings of Msg
	fix    string   // substring of Fix ("-" means Fix must be empty)
}

func (w s3Want) check(t *testing.T, e *providers.Error) {
	t.Helper()
	if e.Op != w.op || e.Kind != w.kind || e.Code != w.code || e.Status != w.status {
		t.Errorf("got op %q kind %q code %q status %d, want %q %q %q %d (msg %q)", e.Op, e.Kind, e.Code, e.Status, w.op, w.kind, w.code, w.status, e.Msg)
	}
	for _, m := range w.msg {
		if !strings.Contains(e.Msg, m) {
			t.Errorf("Msg %q lacks %q", e.Msg, m)
		}
	}
	switch {
	case w.fix == "-" && e.Fix != "":
		t.Errorf("Fix %q, want none", e.Fix)
	case w.fix != "-" && !strings.Contains(e.Fix, w.fix):
		t.Errorf("Fix %q lacks %q", e.Fix, w.fix)
	}
}

// echo is an error message that carries the secret key and session token, in plain and
// URL-escaped forms, as a misbehaving or debugging server might.
var echo = "signature mismatch for secret " + testSecretKey + " token=" + testToken + " escaped " + url.QueryEscape(testSecretKey) + " " + url.QueryEscape(testToken)

func TestClassifyObjectOperations(t *testing.T) {
	t.Parallel()
	objects := "arn:aws:s3:::bucket/prefix/pg/*"
	cases := []struct {
		name  string
		reply map[string]s3Reply
		run   func(ctx context.Context, s *Store) error
		want  s3Want
	}{
		{"put denied", map[string]s3Reply{"PutObject": {403, "AccessDenied", "Access Denied", nil}},
			func(ctx context.Context, s *Store) error {
				return s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{})
			},
			s3Want{"PutObject", providers.KindDenied, "AccessDenied", 403, []string{"PutObject: 403 Forbidden (AccessDenied: Access Denied)"}, "grant s3:PutObject on " + objects}},
		{"get denied", map[string]s3Reply{"GetObject": {403, "AccessDenied", "Access Denied", nil}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			s3Want{"GetObject", providers.KindDenied, "AccessDenied", 403, []string{"GetObject: 403 Forbidden"}, "grant s3:GetObject on " + objects}},
		{"delete denied", map[string]s3Reply{"DeleteObject": {403, "AccessDenied", "Access Denied", nil}},
			func(ctx context.Context, s *Store) error { return s.Delete(ctx, "prefix/pg/k") },
			s3Want{"DeleteObject", providers.KindDenied, "AccessDenied", 403, []string{"DeleteObject: 403 Forbidden"}, "grant s3:DeleteObject on " + objects}},
		{"list denied", map[string]s3Reply{"ListObjectsV2": {403, "AccessDenied", "Access Denied", nil}},
			func(ctx context.Context, s *Store) error { _, err := s.List(ctx, "prefix/pg/", "/", 10); return err },
			s3Want{"ListObjectsV2", providers.KindDenied, "AccessDenied", 403, []string{"ListObjectsV2: 403 Forbidden"}, "grant s3:ListBucket on arn:aws:s3:::bucket"}},
		{"put bad signature echoing the secret", map[string]s3Reply{"PutObject": {403, "SignatureDoesNotMatch", echo, nil}},
			func(ctx context.Context, s *Store) error {
				return s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{})
			},
			s3Want{"PutObject", providers.KindAuth, "SignatureDoesNotMatch", 403, []string{"PutObject: 403 Forbidden (SignatureDoesNotMatch: signature mismatch for secret REDACTED"}, "check the access key id and secret"}},
		{"denied message echoing the secret", map[string]s3Reply{"GetObject": {403, "AccessDenied", echo, nil}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			s3Want{"GetObject", providers.KindDenied, "AccessDenied", 403, []string{"REDACTED"}, "grant s3:GetObject"}},
		{"get missing key", map[string]s3Reply{"GetObject": {404, "NoSuchKey", "The specified key does not exist.", nil}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			s3Want{"GetObject", providers.KindNotFound, "NoSuchKey", 404, []string{"GetObject: 404 Not Found (NoSuchKey: The specified key does not exist.)"}, "-"}},
		{"list missing bucket", map[string]s3Reply{"ListObjectsV2": {404, "NoSuchBucket", "The specified bucket does not exist", nil}},
			func(ctx context.Context, s *Store) error { _, err := s.List(ctx, "prefix/pg/", "", 0); return err },
			s3Want{"ListObjectsV2", providers.KindNotFound, "NoSuchBucket", 404, []string{"404 Not Found (NoSuchBucket"}, "-"}},
		{"put tagging not implemented", map[string]s3Reply{"PutObject": {501, "NotImplemented", "A header you provided implies functionality that is not implemented", nil}},
			func(ctx context.Context, s *Store) error {
				return s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{Tags: map[string]string{"a": "b"}})
			},
			s3Want{"PutObject", providers.KindUnsupported, "NotImplemented", 501, []string{"PutObject: 501 Not Implemented (NotImplemented: "}, "remove wal/data encryption or tags"}},
		{"put kms refused", map[string]s3Reply{"PutObject": {400, "InvalidArgument", "Server Side Encryption with KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms", nil}},
			func(ctx context.Context, s *Store) error {
				return s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{Encryption: "aws:kms"})
			},
			s3Want{"PutObject", providers.KindUnsupported, "InvalidArgument", 400, []string{"400 Bad Request (InvalidArgument: "}, "AWS_REQUEST_CHECKSUM_CALCULATION=when_required"}},
		{"get wrong region", map[string]s3Reply{"GetObject": {400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'", map[string]string{"x-amz-bucket-region": "eu-west-1"}}},
			func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, "prefix/pg/k", 1024); return err },
			s3Want{"GetObject", providers.KindRegion, "AuthorizationHeaderMalformed", 400, []string{"the bucket is in eu-west-1, requests are signed for us-east-1"}, `set s3Credentials.region to a Secret key holding "eu-west-1"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeS3(t, c.reply)
			s := connect(t, srv.URL, true)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e := asError(t, c.run(ctx, s))
			c.want.check(t, e)
			if srv.total.Load() != 1 {
				t.Errorf("%d requests: a %d must not be retried", srv.total.Load(), c.want.status)
			}
		})
	}
}

func TestClassifyCheckBucket(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		reply    map[string]s3Reply
		want     s3Want
		wantList int // ListObjectsV2 calls
	}{
		{"head and list denied", map[string]s3Reply{"HeadBucket": {403, "", "", nil}, "ListObjectsV2": {403, "AccessDenied", "Access Denied", nil}},
			s3Want{"HeadBucket", providers.KindDenied, "Forbidden", 403, []string{`HeadBucket on "bucket": 403 Forbidden (AccessDenied): the identity may not list the bucket`}, "grant s3:ListBucket on arn:aws:s3:::bucket (without an s3:prefix condition)"}, 1},
		{"head denied, prefix listing allowed", map[string]s3Reply{"HeadBucket": {403, "", "", nil}},
			s3Want{"HeadBucket", providers.KindDenied, "Forbidden", 403, []string{`HeadBucket on "bucket" is denied (403) although listing under "prefix/pg/" is allowed`}, "grant s3:ListBucket on arn:aws:s3:::bucket without an s3:prefix condition"}, 1},
		{"bad signature", map[string]s3Reply{"HeadBucket": {403, "", "", nil}, "ListObjectsV2": {403, "SignatureDoesNotMatch", echo, nil}},
			s3Want{"HeadBucket", providers.KindAuth, "SignatureDoesNotMatch", 403, []string{"HeadBucket: 403 Forbidden; ListObjectsV2: 403 Forbidden (SignatureDoesNotMatch: signature mismatch for secret REDACTED"}, "check the access key id and secret"}, 1},
		{"unknown key id", map[string]s3Reply{"HeadBucket": {403, "", "", nil}, "ListObjectsV2": {403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", nil}},
			s3Want{"HeadBucket", providers.KindAuth, "InvalidAccessKeyId", 403, nil, "check the access key id"}, 1},
		{"missing bucket", map[string]s3Reply{"HeadBucket": {404, "", "", nil}},
			s3Want{"HeadBucket", providers.KindNotFound, "NotFound", 404, []string{"HeadBucket: 404 Not Found"}, `create the bucket "bucket" before enabling backups`}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeS3(t, c.reply)
			s := connect(t, srv.URL, true)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e := asError(t, s.CheckBucket(ctx))
			c.want.check(t, e)
			if got := srv.count("ListObjectsV2"); got != c.wantList {
				t.Errorf("%d ListObjectsV2 calls, want %d", got, c.wantList)
			}
			if got := srv.count("HeadBucket"); got != 1 {
				t.Errorf("%d HeadBucket calls, want 1", got)
			}
		})
	}
}

func TestCheckBucketOK(t *testing.T) {
	t.Parallel()
	srv := newFakeS3(t, nil)
	s := connect(t, srv.URL, false)
	if err := s.CheckBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.count("ListObjectsV2") != 0 {
		t.Error("a successful HeadBucket needs no listing")
	}
}

func TestExistsNotFound(t *testing.T) {
	t.Parallel()
	srv := newFakeS3(t, map[string]s3Reply{"HeadObject": {404, "", "", nil}})
	s := connect(t, srv.URL, false)
	ok, err := s.Exists(context.Background(), "prefix/pg/k")
	if ok || err != nil {
		t.Fatalf("Exists = %v, %v; want false, nil", ok, err)
	}
	srv2 := newFakeS3(t, map[string]s3Reply{"HeadObject": {403, "", "", nil}})
	s2 := connect(t, srv2.URL, false)
	ok, err = s2.Exists(context.Background(), "prefix/pg/k")
	e := asError(t, err)
	if ok || e.Kind != providers.KindDenied || !strings.Contains(e.Fix, "s3:GetObject on arn:aws:s3:::bucket/prefix/pg/*") {
		t.Errorf("Exists on 403: %v %+v", ok, e)
	}
}

// 5xx answers are retried (4 attempts, backoff at most 2 s) before they are classified.
func TestClassifyRetried(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		reply s3Reply
		want  s3Want
	}{
		{"slow down", s3Reply{503, "SlowDown", "Please reduce your request rate.", nil},
			s3Want{"PutObject", providers.KindThrottled, "SlowDown", 503, []string{"PutObject: 503 Service Unavailable (SlowDown: Please reduce your request rate.)"}, "the store is throttling (503 SlowDown)"}},
		{"plain 500 without a body", s3Reply{500, "", "", nil},
			s3Want{"PutObject", providers.KindOther, "", 500, []string{"PutObject: 500 Internal Server Error"}, "-"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeS3(t, map[string]s3Reply{"PutObject": c.reply})
			s := connect(t, srv.URL, true)
			ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
			defer cancel()
			start := time.Now()
			err := s.Put(ctx, "prefix/pg/k", []byte("x"), providers.PutOptions{})
			e := asError(t, err)
			if ctx.Err() != nil {
				t.Fatalf("the retries did not finish within 12 s (%s)", time.Since(start))
			}
			want := c.want
			if want.code == "" {
				want.code = e.Code // the SDK's name for a body-less 5xx is its own business
			}
			want.check(t, e)
			if n := srv.count("PutObject"); n != 4 {
				t.Errorf("%d attempts, want 4", n)
			}
			t.Logf("%s: %d attempts in %s; %q", c.name, srv.count("PutObject"), time.Since(start).Round(time.Millisecond), e.Msg)
		})
	}
}

func TestClassifyNetwork(t *testing.T) {
	t.Parallel()
	srv := newFakeS3(t, nil)
	s := connect(t, srv.URL, false)
	srv.Close() // nothing listens any more
	e := asError(t, s.Delete(context.Background(), "prefix/pg/k"))
	if e.Kind != providers.KindNetwork || e.Op != "DeleteObject" || !strings.Contains(e.Msg, "connection refused") {
		t.Errorf("got %+v", e)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e = asError(t, s.Delete(ctx, "prefix/pg/k"))
	if e.Kind != providers.KindCanceled || !errors.Is(e, context.Canceled) {
		t.Errorf("cancelled: got kind %q msg %q", e.Kind, e.Msg)
	}
}

func TestClassifyTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	s := connect(t, hang.URL, false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Get(ctx, "prefix/pg/k", 1024)
	e := asError(t, err)
	if e.Kind != providers.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got kind %q msg %q (errors.Is DeadlineExceeded: %v)", e.Kind, e.Msg, errors.Is(err, context.DeadlineExceeded))
	}
}

// CheckBucket explains a HeadBucket failure with one listing; when that listing is rejected for
// the signature or the region, the message must still quote HeadBucket's own status.
func TestCheckBucketQuotesHeadStatus(t *testing.T) {
	t.Parallel()
	srv := newFakeS3(t, map[string]s3Reply{
		"HeadBucket":    {400, "", "", map[string]string{"x-amz-bucket-region": "eu-west-1"}},
		"ListObjectsV2": {400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong; expecting 'eu-west-1'", map[string]string{"x-amz-bucket-region": "eu-west-1"}},
	})
	s := connect(t, srv.URL, false)
	e := asError(t, s.CheckBucket(context.Background()))
	if strings.Contains(e.Msg, "403") {
		t.Errorf("HeadBucket answered 400, the message says 403: %s", e.Msg)
	}
}

// A store that names another region (x-amz-bucket-region) is asked again, signed for that region,
// as botocore's region redirector does: success with a notice naming the region to set; when even
// that request is refused, the error.
func TestCheckBucketFollowsTheRegionLikeBotocore(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusMovedPermanently} {
		for _, accepts := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d accepts %v", status, accepts), func(t *testing.T) {
				t.Parallel()
				var heads atomic.Int64
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodHead {
						heads.Add(1)
					}
					if accepts && strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/s3/aws4_request") {
						return
					}
					w.Header().Set("x-amz-bucket-region", "eu-west-1")
					w.WriteHeader(status)
				}))
				defer srv.Close()
				s := connect(t, srv.URL, true)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := s.CheckBucket(ctx)
				var nt *providers.Notice
				if accepts {
					if !errors.As(err, &nt) || !strings.Contains(nt.Msg, "the bucket is in eu-west-1, requests were signed for us-east-1") || !strings.Contains(nt.Fix, `"eu-west-1"`) {
						t.Errorf("CheckBucket: %v", err)
					}
					if _, err := s.Exists(ctx, "prefix/pg/x"); err != nil {
						t.Errorf("later requests are not signed for eu-west-1: %v", err)
					}
				} else if err == nil || errors.As(err, &nt) {
					t.Errorf("CheckBucket: %v, want an error", err)
				}
				if n := heads.Load(); n < 2 {
					t.Errorf("%d HeadBucket requests, want the redirected one too", n)
				}
			})
		}
	}
}
