// Package gcs is the provider for Google Cloud Storage, on cloud.google.com/go/storage. It
// resolves credentials as CNPG gives them to barman-cloud (a service-account JSON file through
// GOOGLE_APPLICATION_CREDENTIALS, or the GKE workload identity).
package gcs

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Driver is the GCS provider.
type Driver struct {
	// EmulatorHost (host:port or a URL) points the client at a GCS emulator without credentials,
	// as STORAGE_EMULATOR_HOST does for Google's clients; "" means Google Cloud Storage.
	EmulatorHost string
}

// Info describes the provider.
func (Driver) Info() providers.Info {
	return providers.Info{Name: "gcs", CredentialsField: "googleCredentials", Scheme: "gs://", DestinationForm: "gs://BUCKET/PATH", BucketNoun: "bucket",
		IdentityAnnotation: "iam.gke.io/gcp-service-account", IdentityName: "a Google service account (GKE workload identity)", TLS: providers.Trust{Client: "google-auth (requests, urllib3 ≥ 2.4, Python 3.13)", PartialChain: true, Strict: true}}
}

// Serves: barman-cloud sends gs:// destinations to Google Cloud Storage.
func (Driver) Serves(destinationPath string) bool { return strings.HasPrefix(destinationPath, "gs://") }

// Credentials reads googleCredentials.
func (Driver) Credentials(c *manifest.BarmanObjectStore) providers.Credentials {
	g := c.GoogleCredentials
	if g == nil {
		return providers.Credentials{}
	}
	out := providers.Credentials{Set: true, Refs: providers.Refs(g.ApplicationCredentials)}
	if g.GKEEnvironment {
		out.PodIdentity = "googleCredentials.gkeEnvironment"
	}
	return out
}

// PutOptions: barman-cloud sets the configured tags as object metadata.
func (Driver) PutOptions(c *manifest.BarmanObjectStore) providers.PutOptions {
	return providers.PutOptions{Tags: c.Tags}
}

// Scope is the OAuth scope barman-cloud's client uses.
const Scope = "https://www.googleapis.com/auth/devstorage.full_control"

// Validate parses gs://bucket/prefix and applies CNPG's Google credential rules.
func (d Driver) Validate(t *providers.Target) (providers.Location, []providers.Finding) {
	c := t.Conf
	loc := providers.Location{Provider: "gcs", ServerName: t.ServerName, Endpoint: d.endpoint()}
	var fs []providers.Finding
	u, err := url.Parse(c.DestinationPath)
	switch {
	case err != nil || u.Scheme != "gs":
		fs = append(fs, providers.Failf(t.F("destinationPath"), "use gs://BUCKET/PATH", "not a gs:// URL: %q", c.DestinationPath))
	case u.Host == "":
		fs = append(fs, providers.Failf(t.F("destinationPath"), "use gs://BUCKET/PATH", "Google cloud storage URL %q is malformed: bucket name not found", c.DestinationPath))
	default:
		loc.Bucket, loc.Prefix = u.Host, strings.Trim(u.Path, "/") // barman: parsed_url.path.strip("/")
		if strings.Contains(loc.Prefix, "//") {
			fs = append(fs, providers.Warnf(t.F("destinationPath"), "remove the repeated slash", "double slash in the path: barman-cloud keeps it in every object name"))
		}
	}
	if c.EndpointCA != nil {
		fs = append(fs, providers.Warnf(t.F("endpointCA"), "remove endpointCA; GCS endpoints use public certificates", "endpointCA is ignored by barman-cloud for Google Cloud Storage"))
	}
	if c.EndpointURL != "" {
		fs = append(fs, providers.Warnf(t.F("endpointURL"), "remove endpointURL", "endpointURL is ignored by barman-cloud for Google Cloud Storage"))
	}
	for _, e := range []struct {
		set bool
		f   string
	}{{c.Wal != nil && providers.ValidEncryption(c.Wal.Encryption), "wal.encryption"}, {c.Data != nil && providers.ValidEncryption(c.Data.Encryption), "data.encryption"}} {
		if e.set { // an invalid value fails the CRD enum (the config check)
			fs = append(fs, providers.Warnf(t.F(e.f), "remove it; GCS encrypts at rest (use a bucket default KMS key for CMEK)", "encryption (AES256/aws:kms) is an S3 setting; it has no effect on GCS"))
		}
	}
	g := c.GoogleCredentials
	switch {
	case g == nil:
		fs = append(fs, providers.Failf(t.F("googleCredentials"), "add googleCredentials", "a gs:// destination needs googleCredentials"))
	case g.ApplicationCredentials != nil && g.GKEEnvironment:
		fs = append(fs, t.CredentialRule(t.F("googleCredentials"), "keep applicationCredentials or gkeEnvironment, not both", "applicationCredentials and gkeEnvironment are both set",
			"if gkeEnvironment is true, secret with credentials must not be provided",
			providers.Warnf("", "", "applicationCredentials wins at run time: CNPG hands the service-account key to barman-cloud and gkeEnvironment is ignored")))
	case g.ApplicationCredentials == nil && !g.GKEEnvironment:
		fs = append(fs, t.CredentialRule(t.F("googleCredentials"), "set applicationCredentials (service-account JSON) or gkeEnvironment: true", "neither applicationCredentials nor gkeEnvironment is set",
			"if gkeEnvironment is false, secret with credentials must be provided",
			providers.Failf("", "", "at run time CNPG has no service-account key to give barman-cloud")))
	}
	return loc, fs
}

func (d Driver) endpoint() *url.URL {
	if h := d.EmulatorHost; h != "" {
		if !strings.Contains(h, "://") {
			h = "http://" + h
		}
		if u, err := url.Parse(h); err == nil {
			return &url.URL{Scheme: u.Scheme, Host: u.Host}
		}
	}
	return &url.URL{Scheme: "https", Host: "storage.googleapis.com"}
}

// CA: barman-cloud ignores endpointCA for GCS, so we do too (config warns).
func (Driver) CA(context.Context, *providers.Target) ([]byte, []providers.Finding) { return nil, nil }

type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

// ParseServiceAccount checks a service-account JSON key the way it must be for barman-cloud.
func ParseServiceAccount(b []byte) (*serviceAccount, error) {
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not JSON (syntax error at byte %d)", se.Offset)
		}
		return nil, fmt.Errorf("not a service-account key: %v", err)
	}
	var missing []string
	if sa.Type == "" {
		missing = append(missing, "type")
	}
	if sa.ClientEmail == "" {
		missing = append(missing, "client_email")
	}
	if sa.PrivateKey == "" {
		missing = append(missing, "private_key")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the JSON lacks %s", strings.Join(missing, ", "))
	}
	if sa.Type != "service_account" {
		return nil, fmt.Errorf("type is %q, want \"service_account\"", sa.Type)
	}
	blk, _ := pem.Decode([]byte(sa.PrivateKey))
	if blk == nil {
		return nil, errors.New("private_key is not a PEM key")
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		if _, err2 := x509.ParsePKCS1PrivateKey(blk.Bytes); err2 != nil {
			return nil, errors.New("private_key does not parse as an RSA key")
		}
	}
	return &sa, nil
}

// Connect resolves the service account (or the default credentials) and opens a client.
func (d Driver) Connect(ctx context.Context, t *providers.Target, loc providers.Location, n *providers.Net) (providers.Store, string, []providers.Finding) {
	g := t.Conf.GoogleCredentials
	red := &providers.Redactor{}
	var ts oauth2.TokenSource
	var identity string
	if g.ApplicationCredentials != nil {
		field := "googleCredentials.applicationCredentials"
		b, f := t.Ref(ctx, g.ApplicationCredentials, field)
		if f != nil {
			return nil, "", []providers.Finding{*f}
		}
		sa, err := ParseServiceAccount(b)
		if err != nil {
			return nil, "", []providers.Finding{providers.Failf(t.F(field), "put the service-account key JSON downloaded from IAM in the Secret key", "key %q of Secret %s/%s: %v", g.ApplicationCredentials.Key, t.Namespace, g.ApplicationCredentials.Name, err)}
		}
		red.Add(sa.PrivateKey)
		identity = "service account " + sa.ClientEmail
		creds, err := google.CredentialsFromJSONWithType(ctx, b, google.ServiceAccount, Scope)
		if err != nil {
			return nil, "", []providers.Finding{providers.Failf(t.F(field), "", "the service-account key is not usable: %s", red.Redact(err.Error()))}
		}
		ts = creds.TokenSource
		if t.Offline {
			return nil, identity, nil
		}
	} else if t.Offline {
		return nil, "", []providers.Finding{providers.Warnf(t.F("googleCredentials.gkeEnvironment"), "", "default credentials not resolved (--offline)")}
	} else if d.EmulatorHost == "" {
		// Application Default Credentials as the backup client's container has them: the file
		// GOOGLE_APPLICATION_CREDENTIALS of its environment, else the metadata server (GKE
		// workload identity). Never this process's environment or its gcloud login
		// (google.FindDefaultCredentials would read both).
		var err error
		if path := t.Env["GOOGLE_APPLICATION_CREDENTIALS"]; path != "" {
			var b []byte
			if b, err = os.ReadFile(path); err == nil {
				var creds *google.Credentials
				if creds, err = google.CredentialsFromJSON(ctx, b, Scope); err == nil {
					ts = creds.TokenSource
				}
			}
			if err != nil {
				return nil, "", []providers.Finding{providers.Failf(t.F("googleCredentials.gkeEnvironment"), "mount the credentials file where GOOGLE_APPLICATION_CREDENTIALS points, or remove the variable",
					"GOOGLE_APPLICATION_CREDENTIALS=%s in the backup client's environment: %s", text.Cap(text.Sanitize(path), 200), providers.FirstLine(err.Error()))}
			}
			identity = "default credentials from GOOGLE_APPLICATION_CREDENTIALS in the backup client's environment"
		} else {
			ts = google.ComputeTokenSource("", Scope)
			if _, err = ts.Token(); err != nil {
				return nil, "", []providers.Finding{providers.Failf(t.F("googleCredentials.gkeEnvironment"), "run with the Cluster's ServiceAccount carrying iam.gke.io/gcp-service-account (GKE workload identity)", "no Google default credentials (the metadata server gave no token): %s", providers.FirstLine(err.Error()))}
			}
			identity = "default credentials (GKE workload identity)"
		}
	} else {
		identity = "default credentials (GKE workload identity)"
	}
	httpClient := n.Client
	if d.EmulatorHost != "" {
		identity += "; emulator at " + loc.Endpoint.Host + " (no credentials checked)"
	} else {
		httpClient = &http.Client{Transport: &oauth2.Transport{Source: ts, Base: n.Client.Transport}}
	}
	opts := []option.ClientOption{option.WithHTTPClient(httpClient), option.WithEndpoint(loc.Endpoint.String() + "/storage/v1/")}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, "", []providers.Finding{providers.Failf(t.Field, "", "cannot open the GCS client: %s", red.Redact(err.Error()))}
	}
	client.SetRetry(storage.WithMaxAttempts(3))
	return &Store{c: client, b: client.Bucket(loc.Bucket), loc: loc, red: red}, identity, nil
}

// Store is a GCS bucket.
type Store struct {
	c   *storage.Client
	b   *storage.BucketHandle
	loc providers.Location
	red *providers.Redactor
}

// Endpoint is the URL the client talks to.
func (s *Store) Endpoint() *url.URL { return s.loc.Endpoint }

// MinPartSize is the resumable-upload chunk granularity.
func (s *Store) MinPartSize() int { return googleapi.MinUploadChunkSize }

// CheckBucket does what barman-cloud does: bucket.exists() (buckets.get).
func (s *Store) CheckBucket(ctx context.Context) error {
	_, err := s.b.Attrs(ctx)
	return providers.Classifier(s.classify).Err("GetBucket", err)
}

// List lists object names under prefix.
func (s *Store) List(ctx context.Context, prefix, delimiter string, max int) (providers.Listing, error) {
	var out providers.Listing
	pager := iterator.NewPager(s.b.Objects(ctx, &storage.Query{Prefix: prefix, Delimiter: delimiter}), 1000, "")
	for pages := 0; ; pages++ {
		if pages == providers.ListPages(max, 1000) {
			out.Truncated = true
			return out, nil
		}
		var page []*storage.ObjectAttrs
		token, err := pager.NextPage(&page)
		if err != nil {
			return out, s.classify("ListObjects", err)
		}
		for _, o := range page {
			if o.Prefix != "" {
				out.Prefixes = append(out.Prefixes, o.Prefix)
			} else {
				out.Keys = append(out.Keys, providers.Object{Key: o.Name, Size: o.Size, Modified: o.Updated})
			}
		}
		if out.Clip(max, token != "") || token == "" {
			return out, nil
		}
	}
}

// Put uploads an object in one request; tags become object metadata, as barman-cloud sets them.
func (s *Store) Put(ctx context.Context, key string, data []byte, o providers.PutOptions) error {
	w := s.b.Object(key).NewWriter(ctx)
	w.ChunkSize = 0 // single request
	if len(o.Tags) > 0 {
		w.Metadata = o.Tags
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return s.classify("InsertObject", err)
	}
	return providers.Classifier(s.classify).Err("InsertObject", w.Close())
}

// Get reads the first limit bytes of an object (a ranged read).
func (s *Store) Get(ctx context.Context, key string, limit int64) ([]byte, error) {
	r, err := s.b.Object(key).NewRangeReader(ctx, 0, limit)
	if err != nil {
		e := s.classify("GetObject", err)
		if e.Status == http.StatusRequestedRangeNotSatisfiable {
			return nil, nil // an empty object has no byte 0
		}
		return nil, e
	}
	defer r.Close()
	b, err := providers.ReadAll(r, limit)
	if err != nil {
		return nil, s.classify("GetObject", err)
	}
	return b, nil
}

// Delete deletes an object.
func (s *Store) Delete(ctx context.Context, key string) error {
	return providers.Classifier(s.classify).Err("DeleteObject", s.b.Object(key).Delete(ctx))
}

// DeleteBatch deletes objects one by one: barman-cloud batches them through the JSON API's batch
// endpoint, which the Go client does not offer; each is the same storage.objects.delete.
func (s *Store) DeleteBatch(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil && providers.KindOf(err) != providers.KindNotFound {
			return err
		}
	}
	return nil
}

// Exists reports whether an object exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.b.Object(key).Attrs(ctx)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, storage.ErrObjectNotExist) {
		return false, nil
	}
	return false, s.classify("GetObject", err)
}

// StartMultipart starts a resumable upload and hands it every part but the last, one chunk each
// (resumable chunks go in order; the JSON API sends a chunk once it knows whether it is the last).
// Complete sends the rest; Abort gives the session up.
func (s *Store) StartMultipart(ctx context.Context, key string, parts [][]byte, o providers.PutOptions) (providers.Upload, error) {
	wctx, cancel := context.WithCancel(ctx)
	w := s.b.Object(key).NewWriter(wctx)
	w.ChunkSize = len(parts[0])
	if len(o.Tags) > 0 {
		w.Metadata = o.Tags
	}
	for _, p := range parts[:len(parts)-1] {
		if _, err := w.Write(p); err != nil {
			cancel()
			w.Close()
			return nil, s.classify("ResumableUpload", err)
		}
	}
	return &resumable{s: s, w: w, cancel: cancel, last: parts[len(parts)-1]}, nil
}

type resumable struct {
	s      *Store
	w      *storage.Writer
	cancel context.CancelFunc
	last   []byte
}

// Complete sends the last chunk and finalises the object.
func (u *resumable) Complete(context.Context) error {
	defer u.cancel()
	if _, err := u.w.Write(u.last); err != nil {
		u.w.Close()
		return u.s.classify("ResumableUpload", err)
	}
	return providers.Classifier(u.s.classify).Err("ResumableUpload", u.w.Close())
}

// Abort gives the resumable session up (it expires unused).
func (u *resumable) Abort(context.Context) error {
	u.cancel()
	u.w.Close()
	return nil
}

func (s *Store) classify(op string, err error) *providers.Error {
	if errors.Is(err, storage.ErrBucketNotExist) {
		return &providers.Error{Op: op, Kind: providers.KindNotFound, Status: 404, Err: err, Msg: op + ": 404 Not Found (bucket does not exist)",
			Fix: fmt.Sprintf("create the bucket %q before enabling backups, or grant storage.buckets.create so barman-cloud can create it on first use", s.loc.Bucket)}
	}
	if errors.Is(err, storage.ErrObjectNotExist) {
		return &providers.Error{Op: op, Kind: providers.KindNotFound, Status: 404, Err: err, Msg: op + ": 404 Not Found (object does not exist)"}
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code >= 300 && ge.Code < 400 {
		e := providers.RedirectError(op, ge.Code, ge.Header)
		e.Err = err
		return e
	}
	if errors.As(err, &ge) {
		e := &providers.Error{Op: op, Status: ge.Code, Kind: providers.KindOther, Err: err}
		reason := ""
		if len(ge.Errors) > 0 {
			reason = ge.Errors[0].Reason
		}
		switch ge.Code {
		case http.StatusNotFound:
			e.Kind = providers.KindNotFound
		case http.StatusUnauthorized:
			e.Kind = providers.KindAuth
			e.Fix = "check the service-account key in the referenced Secret (it may be deleted or disabled)"
		case http.StatusForbidden:
			e.Kind = providers.KindDenied
			e.Fix = "grant the service account roles/storage.objectAdmin on the bucket (barman-cloud also needs storage.buckets.get, e.g. roles/storage.legacyBucketReader)"
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			e.Kind = providers.KindThrottled
		}
		e.Code = reason
		msg := ge.Message
		if msg == "" {
			msg = http.StatusText(ge.Code)
		}
		e.Msg = s.red.Redact(fmt.Sprintf("%s: %d %s (%s)", op, ge.Code, http.StatusText(ge.Code), providers.FirstLine(msg)))
		return e
	}
	if ne := providers.NetError(op, err); ne != nil {
		ne.Msg = s.red.Redact(ne.Msg)
		return ne
	}
	return &providers.Error{Op: op, Kind: providers.KindOther, Err: err, Msg: s.red.Redact(op + ": " + providers.FirstLine(err.Error()))}
}
