package s3

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

func TestPolicyParts(t *testing.T) {
	if got := iamEscape("a*b?c$d"); got != "a${*}b${?}c${$}d" {
		t.Errorf("iamEscape: %q", got)
	}
	for arn, want := range map[string]string{
		"arn:aws:iam::123456789012:role/pg":          "pg",
		"arn:aws:iam::123456789012:role/path/to/pg2": "pg2",
		"arn:aws:iam::123456789012:user/pg":          "",
		"pg":                                         "",
	} {
		if got := roleName(arn); got != want {
			t.Errorf("roleName(%q) = %q, want %q", arn, got, want)
		}
	}
}

// Within one identity, a folder both read and written is read-write once, and no statement ever
// names the bucket's objects as a whole.
func TestPolicyNeverTheWholeBucket(t *testing.T) {
	loc := func(prefix, server string) providers.Location {
		return providers.Location{Provider: "s3", Endpoint: &url.URL{Scheme: "https", Host: "s3.amazonaws.com"}, Bucket: "b", Prefix: prefix, ServerName: server}
	}
	conf := &manifest.BarmanObjectStore{}
	p := Driver{}.Policy(providers.PolicyRequest{Name: "n", Targets: []providers.PolicyTarget{
		{ID: "a", Access: providers.ReadWrite, Loc: loc("", "pg"), Conf: conf},
		{ID: "b", Access: providers.ReadOnly, Loc: loc("", "pg"), Conf: conf},
		{ID: "c", Access: providers.ReadOnly, Loc: loc("x/y", "src"), Conf: conf},
	}})
	b, _ := json.Marshal(p.Document)
	s := string(b)
	for _, bad := range []string{`"arn:aws:s3:::b/*"`, `"*"`, "kms:", "PutObjectTagging"} {
		if strings.Contains(s, bad) {
			t.Errorf("policy contains %s: %s", bad, s)
		}
	}
	for _, good := range []string{`"Sid":"BarmanReadWriteServerFolders","Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject","s3:AbortMultipartUpload"],"Resource":["arn:aws:s3:::b/pg/*"]}`, `"Sid":"BarmanReadSourceFolders","Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/x/y/src/*"]}`, `"s3:prefix":["pg/*","x/y/src/*"]`} {
		if !strings.Contains(s, good) {
			t.Errorf("policy lacks %s: %s", good, s)
		}
	}
}
