// Package providers defines what every object-store provider (s3, azure, gcs) offers: parsing a
// destination and applying CNPG's admission rules for its credentials (Validate), resolving
// credentials exactly as CNPG would and opening a client (Connect), and a small Store interface
// the checks use. Errors from SDKs are classified and redacted here.
package providers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
)

// Severity of a Finding.
type Severity int

// Severities.
const (
	Fail Severity = iota
	Warn
)

// Finding is one configuration or credential problem, naming the field path.
type Finding struct {
	Severity Severity
	Field    string // field path, e.g. spec.backup.barmanObjectStore.endpointURL
	Msg      string
	Fix      string
	// Soft: the configuration is wrong, but can still be probed as written (the checks that
	// depend on config run anyway).
	Soft bool
}

func (f Finding) String() string {
	if f.Field == "" {
		return f.Msg
	}
	return f.Field + ": " + f.Msg
}

// Failf returns a failing Finding.
func Failf(field, fix, format string, args ...any) Finding {
	return Finding{Severity: Fail, Field: field, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// Warnf returns a warning Finding.
func Warnf(field, fix, format string, args ...any) Finding {
	return Finding{Severity: Warn, Field: field, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// SecretLookup returns the value of key in the Secret name of the target's namespace. ctx bounds
// a live read (the target's deadline). A missing Secret or key is an error whose message names
// both (never the value): see SecretNotFound and SecretKeyMissing.
type SecretLookup func(ctx context.Context, name, key string) ([]byte, error)

// SecretNotFound is the error of a lookup whose Secret does not exist.
func SecretNotFound(namespace, name string) error {
	return fmt.Errorf("Secret %s/%s not found", namespace, name)
}

// SecretKeyMissing is the error of a lookup whose Secret lacks the key.
func SecretKeyMissing(namespace, name, key string) error {
	return fmt.Errorf("Secret %s/%s has no key %q", namespace, name, key)
}

// Target is what a provider needs to know about one object-store configuration.
type Target struct {
	Conf       *manifest.BarmanObjectStore
	Field      string // field path of the block, e.g. spec.backup.barmanObjectStore
	Namespace  string
	ServerName string
	Env        map[string]string // environment the backup client runs with (see LoadEnv)
	// EnvResolve resolves the rest of Env (valueFrom, envFrom: Secrets and ConfigMaps read
	// through the target's lookups); nil when Env is complete. See LoadEnv.
	EnvResolve func(ctx context.Context) (map[string]string, []Finding)
	Secret     SecretLookup
	Offline    bool // --offline: resolve Secrets, but ask no identity service
	// Admission: CNPG's webhook validates this block's credentials (spec.backup.barmanObjectStore
	// of a Cluster whose validation is on). Other blocks (ObjectStores, externalClusters) are
	// validated by nobody: a combination the webhook would reject is then resolved at run time,
	// and Validate says what wins instead of claiming CNPG rejects it.
	Admission bool

	digest []byte // what Ref resolved, hashed: tells identities apart without keeping them
}

// CredentialDigest identifies the credentials Ref resolved for this target (a hash: never the
// values). Two targets with equal digests on one endpoint and bucket have the same identity.
func (t *Target) CredentialDigest() string { return fmt.Sprintf("%x", t.digest) }

// CredentialRule words a broken credentials combination the way it applies to t. what says what
// is set; for a block CNPG's webhook validates, the result is a failure quoting the webhook's
// reason; for any other block, runtime says what happens when the backup client runs (a warning
// when it still works, naming what wins; a failure when it does not).
func (t *Target) CredentialRule(field, fix, what, webhookReason string, runtime Finding) Finding {
	if t.Admission {
		return Failf(field, fix, "%s: CNPG rejects this (%s)", what, webhookReason)
	}
	runtime.Field, runtime.Fix = field, fix
	runtime.Msg = what + ": " + runtime.Msg + " (nothing rejects it: CNPG's webhook only validates spec.backup.barmanObjectStore)"
	return runtime
}

// Encryptions are the values the CRD allows for wal.encryption and data.encryption, whatever the
// provider (barman-cloud's EncryptionType enum).
var Encryptions = []string{"AES256", "aws:kms"}

// ValidEncryption reports whether v is in the CRD's encryption enum.
func ValidEncryption(v string) bool {
	for _, e := range Encryptions {
		if v == e {
			return true
		}
	}
	return false
}

// F joins the block's field path with a sub-field.
func (t *Target) F(sub string) string { return t.Field + "." + sub }

// Ref resolves a SecretKeySelector at field path sub, as CNPG would: the Secret and key must exist
// and the value must be non-empty.
func (t *Target) Ref(ctx context.Context, ref *manifest.SecretKeySelector, sub string) ([]byte, *Finding) {
	field := t.F(sub)
	if ref == nil {
		return nil, nil
	}
	if ref.Name == "" || ref.Key == "" {
		f := Failf(field, "set both name and key of the Secret reference", "Secret reference needs both name and key")
		return nil, &f
	}
	v, err := t.Secret(ctx, ref.Name, ref.Key)
	if err != nil {
		fix := fmt.Sprintf("create the Secret %s/%s with key %q, or fix the reference", t.Namespace, ref.Name, ref.Key)
		var r interface{ Remediation() string }
		if errors.As(err, &r) && r.Remediation() != "" {
			fix = r.Remediation() // the lookup knows better (a live read the identity may not do)
		}
		f := Failf(field, fix, "%s", err.Error())
		return nil, &f
	}
	if len(strings.TrimSpace(string(v))) == 0 {
		f := Failf(field, fmt.Sprintf("put the value in key %q of Secret %s/%s", ref.Key, t.Namespace, ref.Name), "key %q of Secret %s/%s is empty", ref.Key, t.Namespace, ref.Name)
		return nil, &f
	}
	h := sha256.New()
	h.Write(t.digest)
	fmt.Fprintf(h, "%s\x00%d\x00", sub, len(v))
	h.Write(v)
	t.digest = h.Sum(nil)
	return v, nil
}

// Location is where a target's objects live.
type Location struct {
	Provider   string   // the driver's Info().Name
	Endpoint   *url.URL // scheme://host[:port] the client talks to
	Bucket     string   // bucket (S3, GCS) or container (Azure)
	Account    string   // Azure storage account
	Prefix     string   // destinationPath's path without leading slash, as barman keeps it
	ServerName string
}

// Base is the folder barman writes this server's objects under: "<prefix>/<serverName>/".
func (l Location) Base() string {
	p := l.Prefix
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p + l.ServerName + "/"
}

// MaxListPages bounds the continuation pages one List follows (an endpoint can answer
// "truncated" forever); 200 pages hold 200,000 keys on S3 and GCS.
const MaxListPages = 200

// ListPages is the most continuation pages a List of max entries follows when the store is
// asked for pages of pageSize entries: a store that returns fewer (or none, forever) is cut short.
func ListPages(max, pageSize int) int {
	if max <= 0 {
		return MaxListPages
	}
	return min(MaxListPages, max/pageSize+2)
}

// Clip ends a listing once it holds max entries (max <= 0: never): it trims the keys to fit,
// sets Truncated when entries were left out (more: further pages exist) and reports whether the
// listing is complete.
func (l *Listing) Clip(max int, more bool) bool {
	if max <= 0 || len(l.Keys)+len(l.Prefixes) < max {
		return false
	}
	if room := max - len(l.Prefixes); room >= 0 && len(l.Keys) > room {
		l.Keys, more = l.Keys[:room], true
	}
	l.Truncated = l.Truncated || more || len(l.Keys)+len(l.Prefixes) > max
	return true
}

// ReadAll reads r up to limit bytes (the rest is never read).
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, limit))
}

// Listing is one page of a listing.
type Listing struct {
	Keys      []Object
	Prefixes  []string // common prefixes when a delimiter was given
	Truncated bool
}

// Object is a listed object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// PutOptions are the request options barman would use for this configuration.
type PutOptions struct {
	Encryption string            // S3 server-side encryption: AES256 or aws:kms
	Tags       map[string]string // object tags
}

// Store is the object-store surface the checks use. Keys are full object keys in the bucket.
type Store interface {
	// Endpoint is the URL (scheme://host[:port]) the client talks to.
	Endpoint() *url.URL
	// CheckBucket tests the bucket the way barman-cloud tests connectivity.
	CheckBucket(ctx context.Context) error
	// List lists up to max entries (keys and, with delimiter "/", sub-prefixes) under prefix. It
	// follows continuation pages until max is reached (max <= 0: all), and never more pages than
	// ListPages allows; Truncated says entries were left out.
	List(ctx context.Context, prefix, delimiter string, max int) (Listing, error)
	Put(ctx context.Context, key string, data []byte, opts PutOptions) error
	// Get reads the first limit bytes of key at most (a ranged read, also bounded when the
	// endpoint ignores the range); an empty object reads as no bytes.
	Get(ctx context.Context, key string, limit int64) ([]byte, error)
	Delete(ctx context.Context, key string) error
	// DeleteBatch deletes keys with the call barman-cloud's retention (barman-cloud-backup-delete)
	// uses: S3 DeleteObjects, the Azure Blob Batch API; keys that could not be deleted are an error.
	DeleteBatch(ctx context.Context, keys []string) error
	// Exists reports whether key exists (after a delete, it must not).
	Exists(ctx context.Context, key string) (bool, error)
	// StartMultipart begins a multipart upload of key and uploads every part (concurrently where
	// the protocol allows), the way base backups are uploaded; it does not complete it. On failure
	// it aborts what it started, so nothing is left behind; when even that fails it returns the
	// Upload with the error, for the caller to abort later. Parts are only read.
	StartMultipart(ctx context.Context, key string, parts [][]byte, opts PutOptions) (Upload, error)
	// MinPartSize is the smallest size a non-final part may have.
	MinPartSize() int
	// Policies reads the store's versioning, locks, retention, soft delete and lifecycle rules
	// (see Policies). A setting the identity may not read is listed in Unread; an error means
	// nothing could be read (the store is unreachable, the run ended).
	Policies(ctx context.Context) (Policies, error)
}

// Upload is a multipart upload whose parts are uploaded.
type Upload interface {
	// Complete assembles the parts into the object.
	Complete(ctx context.Context) error
	// Abort gives the upload up so that nothing of it remains visible. What the store keeps
	// depends on the provider (see each implementation): S3 discards the parts; Azure cannot
	// discard staged blocks, which stay invisible until they expire.
	Abort(ctx context.Context) error
}

// Info is what a provider is, for messages and for the rules every provider shares.
type Info struct {
	Name             string // stable provider name in the output: s3, azure, gcs
	CredentialsField string // its credentials block in barmanObjectStore, e.g. s3Credentials
	Scheme           string // how its destinationPaths start, for messages, e.g. s3://
	DestinationForm  string // the destinationPath form, e.g. s3://BUCKET/PATH
	BucketNoun       string // "bucket", or "container" for Azure
	// IdentityAnnotation is the ServiceAccount annotation that gives the database Pods a workload
	// identity (IRSA, Azure workload identity, GKE workload identity), and IdentityName what it gives.
	IdentityAnnotation string
	IdentityName       string
	// TLS is how barman-cloud's client library for this provider verifies certificates.
	TLS Trust
	// Proxy is how that library picks a proxy from the environment.
	Proxy ProxyRules
	// SidecarIdentity, when set, says why the pod identity (PodIdentity) does not reach the
	// Barman Cloud plugin's sidecar: a Job that passes with it proves nothing for the sidecar.
	SidecarIdentity string
}

// Credentials is what a provider reads from its credentials block of a configuration.
type Credentials struct {
	Set  bool                          // the block is present
	Refs []*manifest.SecretKeySelector // every Secret reference in it (nil ones omitted)
	// PodIdentity is the sub-field (e.g. s3Credentials.inheritFromIAMRole) when the block asks for
	// the Pod's own identity instead of Secrets, "" otherwise.
	PodIdentity string
}

// Driver is one provider. Everything that differs between providers lives behind it: the checks
// and targets never switch on a provider.
type Driver interface {
	Info() Info
	// Serves reports whether barman-cloud sends this destinationPath to this provider.
	Serves(destinationPath string) bool
	// Credentials reads the provider's credentials block of c.
	Credentials(c *manifest.BarmanObjectStore) Credentials
	// PutOptions are the request options barman-cloud sends on uploads with configuration c.
	PutOptions(c *manifest.BarmanObjectStore) PutOptions
	// Validate parses the destination and applies CNPG's admission rules for this provider.
	Validate(t *Target) (Location, []Finding)
	// CA returns the endpointCA PEM bundle the backup client would trust, or nil.
	CA(ctx context.Context, t *Target) ([]byte, []Finding)
	// Connect resolves credentials as CNPG would and opens a client. identity describes which
	// identity was resolved (never a secret). Findings are credential problems.
	Connect(ctx context.Context, t *Target, loc Location, n *Net) (s Store, identity string, problems []Finding)
}

// Registry is the set of providers a run knows, in the order they are tried. It is built
// explicitly (see providers/all) and passed to whatever needs it; there is no global one.
type Registry struct{ drivers []Driver }

// NewRegistry returns a registry of drivers.
func NewRegistry(ds ...Driver) *Registry { return &Registry{drivers: ds} }

// Drivers returns the drivers in order.
func (r *Registry) Drivers() []Driver { return r.drivers }

// For returns the driver that serves a destinationPath the way barman-cloud picks its provider,
// or nil when none does.
func (r *Registry) For(destinationPath string) Driver {
	for _, d := range r.drivers {
		if d.Serves(destinationPath) {
			return d
		}
	}
	return nil
}

// Get returns the driver named name, or nil.
func (r *Registry) Get(name string) Driver {
	for _, d := range r.drivers {
		if d.Info().Name == name {
			return d
		}
	}
	return nil
}

// SetCredentials returns the providers whose credentials block c sets.
func (r *Registry) SetCredentials(c *manifest.BarmanObjectStore) []Driver {
	var out []Driver
	for _, d := range r.drivers {
		if d.Credentials(c).Set {
			out = append(out, d)
		}
	}
	return out
}

// CredentialsFields names every provider's credentials block, e.g. "s3Credentials, azureCredentials, googleCredentials".
func (r *Registry) CredentialsFields() string {
	var names []string
	for _, d := range r.drivers {
		names = append(names, d.Info().CredentialsField)
	}
	return strings.Join(names, ", ")
}

// DestinationForms lists every provider's destinationPath form ("a, b or c").
func (r *Registry) DestinationForms() string {
	var forms []string
	for _, d := range r.drivers {
		forms = append(forms, d.Info().DestinationForm)
	}
	return text.Join(forms, "or")
}

// Schemes lists every provider's destinationPath scheme ("a, b and c").
func (r *Registry) Schemes() string {
	var s []string
	for _, d := range r.drivers {
		s = append(s, d.Info().Scheme)
	}
	return text.Join(s, "and")
}

// SecretRefs returns every Secret reference of a configuration: endpointCA and the references in
// every provider's credentials block.
func (r *Registry) SecretRefs(c *manifest.BarmanObjectStore) []*manifest.SecretKeySelector {
	var out []*manifest.SecretKeySelector
	if c.EndpointCA != nil && c.EndpointCA.Name != "" {
		out = append(out, c.EndpointCA)
	}
	for _, d := range r.drivers {
		for _, ref := range d.Credentials(c).Refs {
			if ref != nil && ref.Name != "" {
				out = append(out, ref)
			}
		}
	}
	return out
}

// Refs collects the non-nil references among refs.
func Refs(refs ...*manifest.SecretKeySelector) []*manifest.SecretKeySelector {
	var out []*manifest.SecretKeySelector
	for _, r := range refs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}
