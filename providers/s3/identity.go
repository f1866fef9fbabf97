package s3

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// podIdentity resolves inheritFromIAMRole the way botocore's default chain does in a Pod, with
// only the sources a Pod can have: the environment's keys, a web identity token (IRSA), the
// container credentials endpoint (EKS Pod Identity, ECS) and the instance role (IMDS). Shared
// config and credential files, SSO and credential processes are left out (CNPG's Pods have none),
// which keeps their SDK packages out of the binary. getenv is the Pod's environment: the Job runs
// cnpg-preflight with the Cluster's ServiceAccount, so what the identity webhooks inject is there.
func podIdentity(getenv func(string) string, client *http.Client) (aws.CredentialsProvider, string, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	switch {
	case getenv("AWS_ACCESS_KEY_ID") != "" && getenv("AWS_SECRET_ACCESS_KEY") != "":
		return credentials.NewStaticCredentialsProvider(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN")),
			"the backup client's environment (AWS_ACCESS_KEY_ID)", nil
	case getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "" && getenv("AWS_ROLE_ARN") != "":
		if region == "" {
			return nil, "", errors.New("AWS_WEB_IDENTITY_TOKEN_FILE is set but no AWS_REGION: the STS call of the web identity has no region")
		}
		stsc := sts.New(sts.Options{Region: region, HTTPClient: client})
		p := stscreds.NewWebIdentityRoleProvider(stsc, getenv("AWS_ROLE_ARN"), stscreds.IdentityTokenFile(getenv("AWS_WEB_IDENTITY_TOKEN_FILE")), func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = getenv("AWS_ROLE_SESSION_NAME")
		})
		return p, fmt.Sprintf("web identity (IRSA, role %s)", getenv("AWS_ROLE_ARN")), nil
	case getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != "" || getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "":
		u := getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
		if u == "" {
			u = "http://169.254.170.2" + getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
		}
		p := endpointcreds.New(u, func(o *endpointcreds.Options) {
			o.HTTPClient = client
			if f := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); f != "" {
				o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
					b, err := os.ReadFile(f)
					return strings.TrimSpace(string(b)), err
				})
			} else if tok := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"); tok != "" {
				o.AuthorizationToken = tok
			}
		})
		return p, "the container credentials endpoint (EKS Pod Identity / ECS)", nil
	}
	p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = imds.New(imds.Options{HTTPClient: client}) })
	return p, "the instance role (IMDS)", nil
}
