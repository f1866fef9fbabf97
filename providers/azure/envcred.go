package azure

import (
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// defaultCredential is Azure's default credential chain as it runs in the backup client's
// container, built from that container's environment (never this process's: azidentity's own
// DefaultAzureCredential reads os.Getenv and would pick up the laptop's variables or Azure CLI
// login): a client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), workload
// identity (AZURE_FEDERATED_TOKEN_FILE with AZURE_CLIENT_ID and AZURE_TENANT_ID), then the managed
// identity (user-assigned with AZURE_CLIENT_ID). The developer credentials of the chain (Azure CLI,
// PowerShell, azd) do not exist in a database Pod.
func defaultCredential(env map[string]string, o azcore.ClientOptions) (azcore.TokenCredential, string, error) {
	var chain []azcore.TokenCredential
	var names []string
	tenant, client := env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"]
	if secret := env["AZURE_CLIENT_SECRET"]; tenant != "" && client != "" && secret != "" {
		if c, err := azidentity.NewClientSecretCredential(tenant, client, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: o}); err == nil {
			chain, names = append(chain, c), append(names, "client secret (AZURE_CLIENT_SECRET)")
		}
	}
	if file := env["AZURE_FEDERATED_TOKEN_FILE"]; file != "" && tenant != "" && client != "" {
		if c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: o, ClientID: client, TenantID: tenant, TokenFilePath: file}); err == nil {
			chain, names = append(chain, c), append(names, "workload identity (AZURE_FEDERATED_TOKEN_FILE)")
		}
	}
	mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: o}
	if client != "" {
		mo.ID = azidentity.ClientID(client)
	}
	mi, err := azidentity.NewManagedIdentityCredential(mo)
	if err != nil {
		return nil, "", err
	}
	chain, names = append(chain, mi), append(names, "managed identity")
	c, err := azidentity.NewChainedTokenCredential(chain, nil)
	return c, "default Azure credential chain from the backup client's environment: " + strings.Join(names, ", "), err
}
