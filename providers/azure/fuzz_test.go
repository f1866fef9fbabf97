package azure

import (
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// FuzzParseAzure: Azure destinationPath parsing never panics, and without failures yields an
// account, a container and an endpoint.
func FuzzParseAzure(f *testing.F) {
	for _, s := range []string{"https://acct.blob.core.windows.net/c/p", "http://127.0.0.1:10000/devstoreaccount1/c/p", "https://h/", "http://h:1/a", "https://acct.blob.core.usgovcloudapi.net/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dest string) {
		conf := &manifest.BarmanObjectStore{DestinationPath: dest, AzureCredentials: &manifest.AzureCredentials{ConnectionString: &manifest.SecretKeySelector{Name: "a", Key: "b"}}}
		loc, fs := Driver{}.Validate(&providers.Target{Conf: conf, Field: "f", ServerName: "srv"})
		for _, x := range fs {
			if x.Severity == providers.Fail {
				return
			}
		}
		if loc.Bucket == "" || loc.Account == "" || loc.Endpoint == nil {
			t.Fatalf("valid destination %q without container, account or endpoint: %+v", dest, loc)
		}
		if !strings.HasSuffix(loc.Base(), "srv/") {
			t.Fatalf("base %q", loc.Base())
		}
	})
}
