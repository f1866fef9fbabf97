package gcs_test

import (
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

// The Store contract against the GCS emulator (fake-gcs-server), with continuation pages.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	providertest.Run(t, testenv.GCSOpener(srv), providertest.Options{PageKeys: 1001})
}
