package azure

import (
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// The default chain is built from the backup client's environment only: the process's own
// AZURE_* variables (set here) are never used.
func TestDefaultCredentialFromTargetEnv(t *testing.T) {
	t.Setenv("AZURE_TENANT_ID", "laptop-tenant")
	t.Setenv("AZURE_CLIENT_ID", "laptop-client")
	t.Setenv("AZURE_CLIENT_SECRET", "laptop-secret")
	_, desc, err := defaultCredential(map[string]string{}, azcore.ClientOptions{})
	if err != nil || desc != "default Azure credential chain from the backup client's environment: managed identity" {
		t.Errorf("empty environment: %q %v", desc, err)
	}
	env := map[string]string{"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"}
	if _, desc, err = defaultCredential(env, azcore.ClientOptions{}); err != nil || !strings.Contains(desc, "workload identity (AZURE_FEDERATED_TOKEN_FILE), managed identity") || strings.Contains(desc, "client secret") {
		t.Errorf("workload identity: %q %v", desc, err)
	}
}
