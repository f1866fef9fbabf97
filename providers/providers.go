// Package providers defines what every object-store provider (s3, azure, gcs) offers: parsing a
// destination and applying CNPG's admission rules for its credentials (Validate), resolving
// credentials exactly as CNPG would and opening a client (Connect), and a small Store interface
// the checks use. Errors from SDKs are classified and redacted here.
package providers

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

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

// SecretLookup returns the value of key in the Secret name of the target's namespace.
// A missing Secret or key is an error whose message names both (never the value).
type SecretLookup func(name, key string) ([]byte, error)

// Target is what a provider needs to know about one object-store configuration.
type Target struct {
	Conf       *manifest.BarmanObjectStore
	Field      string // field path of the block, e.g. spec.backup.barmanObjectStore
	Namespace  string
	ServerName string
	Env        map[string]string // environment the backup client runs with (plugin sidecar env)
	Secret     SecretLookup
	Offline    bool // --offline: resolve Secrets, but ask no identity service
}

// F joins the block's field path with a sub-field.
func (t *Target) F(sub string) string { return t.Field + "." + sub }

// Ref resolves a SecretKeySelector at field path sub, as CNPG would: the Secret and key must exist
// and the value must be non-empty.
func (t *Target) Ref(ref *manifest.SecretKeySelector, sub string) ([]byte, *Finding) {
	field := t.F(sub)
	if ref == nil {
		return nil, nil
	}
	if ref.Name == "" || ref.Key == "" {
		f := Failf(field, "set both name and key of the Secret reference", "Secret reference needs both name and key")
		return nil, &f
	}
	v, err := t.Secret(ref.Name, ref.Key)
	if err != nil {
		f := Failf(field, fmt.Sprintf("create the Secret %s/%s with key %q, or fix the reference", t.Namespace, ref.Name, ref.Key), "%s", err.Error())
		return nil, &f
	}
	if len(strings.TrimSpace(string(v))) == 0 {
		f := Failf(field, fmt.Sprintf("put the value in key %q of Secret %s/%s", ref.Key, t.Namespace, ref.Name), "key %q of Secret %s/%s is empty", ref.Key, t.Namespace, ref.Name)
		return nil, &f
	}
	return v, nil
}

// Location is where a target's objects live.
type Location struct {
	Provider   string   // s3, azure, gcs
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
	// List lists up to max keys under prefix; with delimiter "/" it returns sub-prefixes too.
	// It follows continuation pages until max is reached (max <= 0: all).
	List(ctx context.Context, prefix, delimiter string, max int) (Listing, error)
	Put(ctx context.Context, key string, data []byte, opts PutOptions) error
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	// Exists reports whether key exists (after a delete, it must not).
	Exists(ctx context.Context, key string) (bool, error)
	// StartMultipart begins a multipart upload of key and uploads every part (concurrently where
	// the protocol allows), the way base backups are uploaded; it does not complete it. On failure
	// it aborts what it started, so nothing is left behind; when even that fails it returns the
	// Upload with the error, for the caller to abort later. Parts are only read.
	StartMultipart(ctx context.Context, key string, parts [][]byte, opts PutOptions) (Upload, error)
	// MinPartSize is the smallest size a non-final part may have.
	MinPartSize() int
}

// Upload is a multipart upload whose parts are uploaded.
type Upload interface {
	// Complete assembles the parts into the object.
	Complete(ctx context.Context) error
	// Abort discards the parts.
	Abort(ctx context.Context) error
}

// Driver is one provider.
type Driver interface {
	// Validate parses the destination and applies CNPG's admission rules for this provider.
	Validate(t *Target) (Location, []Finding)
	// Connect resolves credentials as CNPG would and opens a client. identity describes which
	// identity was resolved (never a secret). Findings are credential problems.
	Connect(ctx context.Context, t *Target, loc Location, n *Net) (s Store, identity string, problems []Finding)
	// CA returns the endpointCA PEM bundle the backup client would trust, or nil.
	CA(t *Target) ([]byte, []Finding)
}

var drivers = map[string]Driver{}

// Register makes a driver available under a provider name.
func Register(name string, d Driver) { drivers[name] = d }

// Get returns the driver for a provider name.
func Get(name string) Driver { return drivers[name] }

// ProviderOf tells the provider from a destinationPath the way barman does.
func ProviderOf(destinationPath string) string {
	switch {
	case strings.HasPrefix(destinationPath, "s3://"):
		return "s3"
	case strings.HasPrefix(destinationPath, "gs://"):
		return "gcs"
	case strings.HasPrefix(destinationPath, "https://"), strings.HasPrefix(destinationPath, "http://"):
		return "azure"
	}
	return ""
}
