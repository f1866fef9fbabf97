// Package all lists every provider cnpg-preflight knows. Adding a provider is one package under
// providers/ and one line here.
package all

import (
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/azure"
	"github.com/cnpg-preflight/cnpg-preflight/providers/gcs"
	"github.com/cnpg-preflight/cnpg-preflight/providers/s3"
)

// Settings are the process-wide settings providers take (read from the injected environment, never
// from os.Getenv inside a provider).
type Settings struct {
	// GCSEmulatorHost is STORAGE_EMULATOR_HOST: a GCS emulator instead of Google Cloud Storage.
	GCSEmulatorHost string
}

// Registry returns the registry of every provider, in the order destinations are matched.
func Registry(s Settings) *providers.Registry {
	return providers.NewRegistry(
		s3.Driver{},
		azure.Driver{},
		gcs.Driver{EmulatorHost: s.GCSEmulatorHost},
	)
}
