package s3_test

import (
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

// The Store contract against the real S3 servers: MinIO (HTTP and TLS) and versitygw.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	for _, c := range []struct {
		name, endpoint, user, pass string
		tls                        bool
		pages                      int
	}{
		{"minio", "MINIO_ENDPOINT", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", false, 1001},
		{"minio-tls", "MINIO_TLS_ENDPOINT", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", true, 0},
		{"versitygw", "VERSITYGW_ENDPOINT", "VERSITYGW_ACCESS", "VERSITYGW_SECRET", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			providertest.Run(t, testenv.S3Opener(srv, c.endpoint, c.user, c.pass, c.tls), providertest.Options{PageKeys: c.pages})
		})
	}
}
