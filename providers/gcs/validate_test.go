package gcs

import (
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

// TestValidateCredentials: the webhook's Google rules apply to spec.backup.barmanObjectStore
// only; elsewhere the finding says what happens at run time.
func TestValidateCredentials(t *testing.T) {
	sa := providertest.Ref("s", "k")
	cases := []struct {
		name      string
		g         manifest.GoogleCredentials
		admission bool
		want      string
	}{
		{"key", manifest.GoogleCredentials{ApplicationCredentials: sa}, true, ""},
		{"both, validated", manifest.GoogleCredentials{ApplicationCredentials: sa, GKEEnvironment: true}, true,
			"fail: spec.f.googleCredentials: applicationCredentials and gkeEnvironment are both set: CNPG rejects this (if gkeEnvironment is true, secret with credentials must not be provided)"},
		{"both, not validated", manifest.GoogleCredentials{ApplicationCredentials: sa, GKEEnvironment: true}, false,
			"warn: spec.f.googleCredentials: applicationCredentials and gkeEnvironment are both set: applicationCredentials wins at run time"},
		{"neither, validated", manifest.GoogleCredentials{}, true,
			"fail: spec.f.googleCredentials: neither applicationCredentials nor gkeEnvironment is set: CNPG rejects this (if gkeEnvironment is false, secret with credentials must be provided)"},
		{"neither, not validated", manifest.GoogleCredentials{}, false,
			"fail: spec.f.googleCredentials: neither applicationCredentials nor gkeEnvironment is set: at run time CNPG has no service-account key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := c.g
			_, fs := Driver{}.Validate(&providers.Target{Conf: &manifest.BarmanObjectStore{DestinationPath: "gs://b/p", GoogleCredentials: &g}, Field: "spec.f", ServerName: "pg", Admission: c.admission})
			got := providertest.Findings(fs)
			if c.want == "" && len(got) > 0 || c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)) {
				t.Errorf("findings %q, want %q", got, c.want)
			}
		})
	}
}
