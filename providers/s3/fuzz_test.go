package s3

import (
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// FuzzParseS3: destinationPath and endpointURL parsing never panics, and a configuration without
// failures always yields a bucket, an endpoint and a base under <prefix>/<serverName>/.
func FuzzParseS3(f *testing.F) {
	for _, s := range [][2]string{{"s3://b/p", ""}, {"s3://b//x/", "https://h:9000/"}, {"s3:///p", "h:9"}, {"s3://b/p?x#y", "https://h/b?q=1"}, {"s3://B_b/%zz", "http://[::1]:9000"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, dest, endpoint string) {
		conf := &manifest.BarmanObjectStore{DestinationPath: dest, EndpointURL: endpoint, S3Credentials: keys()}
		loc, fs := Driver{}.Validate(&providers.Target{Conf: conf, Field: "f", ServerName: "srv"})
		for _, x := range fs {
			if x.Severity == providers.Fail {
				return
			}
		}
		if loc.Bucket == "" || loc.Endpoint == nil || loc.Endpoint.Host == "" {
			t.Fatalf("valid config without bucket or endpoint: %+v", loc)
		}
		if !strings.HasSuffix(loc.Base(), "srv/") || strings.HasPrefix(loc.Base(), "/") {
			t.Fatalf("base %q", loc.Base())
		}
	})
}
