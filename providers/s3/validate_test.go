package s3

import (
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

var ref = providertest.Ref

func keys() *manifest.S3Credentials {
	return &manifest.S3Credentials{AccessKeyID: ref("s", "id"), SecretAccessKey: ref("s", "secret")}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name           string
		conf           manifest.BarmanObjectStore
		bucket, prefix string
		endpoint, base string
		runtime        bool     // a block CNPG's webhook does not validate (ObjectStore, externalClusters)
		fails, warns   []string // substrings of "field: msg"
	}{
		{name: "plain", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b/a/b", S3Credentials: keys()},
			bucket: "b", prefix: "a/b", endpoint: "https://s3.amazonaws.com", base: "a/b/pg/"},
		{name: "no prefix", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b/", S3Credentials: keys()}, bucket: "b", base: "pg/"},
		{name: "leading slashes stripped like lstrip", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b//x/", S3Credentials: keys()}, bucket: "b", prefix: "x/", base: "x/pg/",
			warns: []string{"destinationPath: double slash"}},
		{name: "endpoint", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b/p", EndpointURL: "https://minio.local:9000/", S3Credentials: keys()},
			bucket: "b", prefix: "p", endpoint: "https://minio.local:9000", base: "p/pg/"},
		{name: "endpoint without scheme", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b/p", EndpointURL: "minio.local:9000", S3Credentials: keys()},
			bucket: "b", prefix: "p", fails: []string{"endpointURL: \"minio.local:9000\" is not an http:// or https:// URL"}},
		{name: "bucket in endpoint path", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b/p", EndpointURL: "https://h/b", S3Credentials: keys()},
			bucket: "b", prefix: "p", endpoint: "https://h", fails: []string{"bucket \"b\" is repeated in the endpoint's path"}},
		{name: "endpoint with path and query", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b/p", EndpointURL: "https://h/x?y=1", S3Credentials: keys()},
			bucket: "b", prefix: "p", endpoint: "https://h", fails: []string{"query string", "endpointURL has a path"}},
		{name: "bucket in endpoint host", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b/p", EndpointURL: "https://b.sfo3.digitaloceanspaces.com", S3Credentials: keys()},
			bucket: "b", prefix: "p", endpoint: "https://b.sfo3.digitaloceanspaces.com", warns: []string{"repeated in the endpoint's host"}},
		{name: "no bucket", conf: manifest.BarmanObjectStore{DestinationPath: "s3:///p", S3Credentials: keys()}, fails: []string{"no bucket"}},
		{name: "wrong scheme", conf: manifest.BarmanObjectStore{DestinationPath: "s4://b/p", S3Credentials: keys()}, fails: []string{"scheme must be s3://"}},
		{name: "no creds", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b"}, bucket: "b", endpoint: "https://s3.amazonaws.com", fails: []string{"needs s3Credentials"}},
		{name: "keys and IAM", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: &manifest.S3Credentials{AccessKeyID: ref("s", "i"), InheritFromIAMRole: true}},
			bucket: "b", endpoint: "https://s3.amazonaws.com", fails: []string{"CNPG rejects this (only one AWS authentication method should be supplied; when using AWS credentials both"}},
		{name: "keys and IAM, not validated", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: &manifest.S3Credentials{AccessKeyID: ref("s", "i"), SecretAccessKey: ref("s", "k"), InheritFromIAMRole: true}},
			bucket: "b", endpoint: "https://s3.amazonaws.com", runtime: true, warns: []string{"s3Credentials: inheritFromIAMRole is set together with accessKeyId/secretAccessKey: inheritFromIAMRole wins at run time"}},
		{name: "half keys", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: &manifest.S3Credentials{AccessKeyID: ref("s", "i")}},
			bucket: "b", endpoint: "https://s3.amazonaws.com", fails: []string{"secretAccessKey: accessKeyId is set but secretAccessKey is missing: CNPG rejects this (when using AWS credentials both accessKeyId and secretAccessKey must be provided)"}},
		{name: "half keys, not validated", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: &manifest.S3Credentials{AccessKeyID: ref("s", "i")}},
			bucket: "b", endpoint: "https://s3.amazonaws.com", runtime: true, fails: []string{`secretAccessKey: accessKeyId is set but secretAccessKey is missing: at run time CNPG stops with "missing secret access key"`}},
		{name: "empty creds", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: &manifest.S3Credentials{}},
			bucket: "b", endpoint: "https://s3.amazonaws.com", fails: []string{"neither accessKeyId/secretAccessKey nor inheritFromIAMRole is set: CNPG rejects this (at least one AWS authentication method should be supplied)"}},
		{name: "empty creds, not validated", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: &manifest.S3Credentials{}},
			bucket: "b", endpoint: "https://s3.amazonaws.com", runtime: true, fails: []string{`at run time CNPG stops with "missing access key ID"`}},
		{name: "IAM with region ref", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: &manifest.S3Credentials{InheritFromIAMRole: true, Region: ref("s", "r")}},
			bucket: "b", endpoint: "https://s3.amazonaws.com", warns: []string{"ignores the region"}},
		{name: "encryption is the config check's (CRD enum)", conf: manifest.BarmanObjectStore{DestinationPath: "s3://b", S3Credentials: keys(), Wal: &manifest.WalBackup{Encryption: "aes"}},
			bucket: "b", endpoint: "https://s3.amazonaws.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := c.conf
			loc, fs := Driver{}.Validate(&providers.Target{Conf: &conf, Field: "spec.backup.barmanObjectStore", ServerName: "pg", Admission: !c.runtime})
			if loc.Bucket != c.bucket || loc.Prefix != c.prefix {
				t.Errorf("bucket %q prefix %q, want %q %q", loc.Bucket, loc.Prefix, c.bucket, c.prefix)
			}
			if c.endpoint != "" && (loc.Endpoint == nil || loc.Endpoint.String() != c.endpoint) {
				t.Errorf("endpoint %v, want %s", loc.Endpoint, c.endpoint)
			}
			if c.base != "" && loc.Base() != c.base {
				t.Errorf("base %q, want %q", loc.Base(), c.base)
			}
			var fails, warns []string
			for _, f := range fs {
				if f.Severity == providers.Fail {
					fails = append(fails, f.String())
				} else {
					warns = append(warns, f.String())
				}
			}
			match := func(kind string, got, want []string) {
				if len(got) != len(want) {
					t.Errorf("%s: got %q, want %q", kind, got, want)
					return
				}
				for i := range want {
					if !strings.Contains(got[i], want[i]) {
						t.Errorf("%s[%d]: %q does not contain %q", kind, i, got[i], want[i])
					}
				}
			}
			match("fails", fails, c.fails)
			match("warns", warns, c.warns)
		})
	}
}
