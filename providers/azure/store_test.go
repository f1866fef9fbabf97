package azure_test

import (
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

// The Store contract against Azurite over HTTP and HTTPS. Azure pages hold 5,000 blobs; paging is
// not exercised here (the flat and hierarchical pagers are the SDK's).
func TestStoreContract(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	for _, tls := range []bool{false, true} {
		name := "azurite"
		if tls {
			name += "-tls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			providertest.Run(t, testenv.AzureOpener(srv, tls), providertest.Options{})
		})
	}
}
