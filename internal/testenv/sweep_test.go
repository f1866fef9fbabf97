package testenv

import (
	"slices"
	"testing"
)

// The sweep also looks for the secrets of the backup clients' environments.
func TestSecretValuesOfEnvironments(t *testing.T) {
	doc := `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  envFrom: [{secretRef: {name: aws}, prefix: AWS_}]
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    parameters: {barmanObjectName: store}
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store, namespace: db}
spec:
  configuration: {destinationPath: s3://b/p, s3Credentials: {inheritFromIAMRole: true}}
  instanceSidecarConfiguration:
    env: [{name: HTTPS_PROXY, valueFrom: {secretKeyRef: {name: proxy, key: url}}}]
---
apiVersion: v1
kind: Secret
metadata: {name: aws, namespace: db}
stringData: {ACCESS_KEY_ID: visible-id, SECRET_ACCESS_KEY: the-secret-key}
---
apiVersion: v1
kind: Secret
metadata: {name: proxy, namespace: db}
stringData: {url: "http://u:pr0xy-pa55@proxy:3128"}
`
	got := SecretValues(doc)
	for _, want := range []string{"the-secret-key", "pr0xy-pa55"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q not swept: %v", want, got)
		}
	}
	if slices.Contains(got, "visible-id") {
		t.Error("an access key ID is not a secret")
	}
}
