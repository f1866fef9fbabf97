package azure

import (
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

var ref = providertest.Ref

// TestValidateCredentials: CNPG's webhook rejects these combinations only for
// spec.backup.barmanObjectStore (Admission); elsewhere the finding says what wins at run time.
func TestValidateCredentials(t *testing.T) {
	const real = "https://acct.blob.core.windows.net/c/p"
	cases := []struct {
		name      string
		dest      string
		cr        manifest.AzureCredentials
		admission bool
		want      string // the one finding, "fail: …" or "warn: …" (substring); "" for none
	}{
		{"connection string alone", real, manifest.AzureCredentials{ConnectionString: ref("s", "cs")}, true, ""},
		{"connection string and account, validated", real, manifest.AzureCredentials{ConnectionString: ref("s", "cs"), StorageAccount: ref("s", "a")}, true,
			"fail: spec.f.azureCredentials: connectionString is set together with storageAccount: CNPG rejects this (when connection string is specified, the other parameters must be empty)"},
		{"connection string and account, not validated", real, manifest.AzureCredentials{ConnectionString: ref("s", "cs"), StorageAccount: ref("s", "a")}, false,
			"warn: spec.f.azureCredentials: connectionString is set together with storageAccount: the connection string wins at run time"},
		{"connection string and Azure AD, not validated", real, manifest.AzureCredentials{ConnectionString: ref("s", "cs"), InheritFromAzureAD: true}, false,
			"warn: spec.f.azureCredentials: connectionString is set together with inheritFromAzureAD: inheritFromAzureAD wins at run time (barman-cloud gets --credential managed-identity)"},
		{"nothing, validated", real, manifest.AzureCredentials{StorageAccount: ref("s", "a")}, true,
			"fail: spec.f.azureCredentials: no way to authenticate is set: CNPG rejects this (when connection string is not specified, one and only one of"},
		{"nothing, not validated", real, manifest.AzureCredentials{StorageAccount: ref("s", "a")}, false,
			"warn: spec.f.azureCredentials: no way to authenticate is set: at run time barman-cloud falls back to Azure's default credentials"},
		{"key and SAS, not validated", real, manifest.AzureCredentials{StorageAccount: ref("s", "a"), StorageKey: ref("s", "k"), StorageSasToken: ref("s", "t")}, false,
			"warn: spec.f.azureCredentials: more than one of storageKey, storageSasToken is set: the SAS token wins at run time"},
		{"Azure AD and default, validated", real, manifest.AzureCredentials{InheritFromAzureAD: true, UseDefaultAzureCredentials: true}, true,
			"fail: spec.f.azureCredentials: more than one of inheritFromAzureAD, useDefaultAzureCredentials is set: CNPG rejects this"},
		{"key without account, validated", real, manifest.AzureCredentials{StorageKey: ref("s", "k")}, true,
			"fail: spec.f.azureCredentials.storageAccount: storageKey or storageSasToken is set without storageAccount: CNPG rejects this (storage account must be specified when using storage key or SAS token)"},
		{"key without account, not validated", real, manifest.AzureCredentials{StorageKey: ref("s", "k")}, false,
			"warn: spec.f.azureCredentials.storageAccount: storageKey or storageSasToken is set without storageAccount: at run time barman-cloud takes the account from destinationPath"},
		{"emulator with connection string and Azure AD", "http://127.0.0.1:10000/acct/c/p", manifest.AzureCredentials{ConnectionString: ref("s", "cs"), InheritFromAzureAD: true}, false,
			"fail: spec.f.azureCredentials: barman-cloud treats any host not ending in blob.core.windows.net as an emulator and then requires a connection string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := c.cr
			_, fs := Driver{}.Validate(&providers.Target{Conf: &manifest.BarmanObjectStore{DestinationPath: c.dest, AzureCredentials: &cr}, Field: "spec.f", ServerName: "pg", Admission: c.admission})
			got := providertest.Findings(fs)
			switch {
			case c.want == "" && len(got) > 0:
				t.Errorf("unexpected findings %q", got)
			case c.want != "" && (len(got) == 0 || !strings.Contains(got[0], c.want)):
				t.Errorf("findings %q, want first %q", got, c.want)
			}
			if !c.admission {
				for _, g := range got {
					if strings.Contains(g, "CNPG rejects") {
						t.Errorf("claims CNPG rejects a block its webhook does not validate: %s", g)
					}
				}
			}
		})
	}
}
