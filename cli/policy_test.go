package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/s3"
)

// TestPolicyGolden runs policy on every directory of testdata/policy in each output format and
// compares with the golden files (go test ./cli -run TestPolicyGolden -update-policy rewrites them).
func TestPolicyGolden(t *testing.T) {
	dirs, err := filepath.Glob("../testdata/policy/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no policy corpus: %v", err)
	}
	for _, dir := range dirs {
		for _, format := range PolicyFormats {
			t.Run(filepath.Base(dir)+"/"+format, func(t *testing.T) {
				f, out, errb := testFactory("", nil)
				code := MainContext(t.Context(), f, []string{"policy", "-f", filepath.Join(dir, "clusters.yaml"), "-o", format})
				got := out.String()
				if errb.Len() > 0 {
					got += "--- stderr\n" + errb.String()
				}
				got += "--- exit " + string(rune('0'+code)) + "\n"
				golden := filepath.Join(dir, format+".golden")
				if os.Getenv("UPDATE_POLICY_GOLDEN") == "1" {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (UPDATE_POLICY_GOLDEN=1 writes it)", err)
				}
				if got != string(want) {
					t.Errorf("policy -o %s differs from %s:\n%s", format, golden, got)
				}
			})
		}
	}
}

func runPolicyJSON(t *testing.T, manifest string, args ...string) (PolicyDocument, int, string) {
	t.Helper()
	f, out, errb := testFactory(manifest, nil)
	code := MainContext(t.Context(), f, append([]string{"policy", "-f", "-", "-o", "json"}, args...))
	var doc PolicyDocument
	if code != ExitUsage {
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("bad JSON: %v\n%s", err, out)
		}
	}
	return doc, code, errb.String()
}

const sharedS3 = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg-a, namespace: db}
spec:
  instances: 1
  bootstrap: {recovery: {source: src}}
  backup:
    barmanObjectStore:
      destinationPath: s3://b/prod
      endpointURL: http://127.0.0.1:9
      s3Credentials: {accessKeyId: {name: c, key: id}, secretAccessKey: {name: c, key: secret}}
  externalClusters:
  - name: src
    barmanObjectStore:
      destinationPath: s3://b/prod
      serverName: pg-src
      endpointURL: http://127.0.0.1:9
      s3Credentials: {accessKeyId: {name: c, key: id}, secretAccessKey: {name: c, key: secret}}
  - name: other
    barmanObjectStore:
      destinationPath: s3://b/prod
      serverName: pg-other
      endpointURL: http://127.0.0.1:9
      s3Credentials: {accessKeyId: {name: other, key: id}, secretAccessKey: {name: other, key: secret}}
`

// Targets sharing a bucket and identity merge into one policy in which each folder keeps its own
// access: the source's folder is never writable, the backup's never widened to the bucket; another
// identity on the same bucket gets its own policy.
func TestPolicyMergeDoesNotWiden(t *testing.T) {
	doc, code, stderr := runPolicyJSON(t, sharedS3)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if len(doc.Policies) != 1 {
		t.Fatalf("want 1 policy (the unused external cluster needs none), got %d", len(doc.Policies))
	}
	if len(doc.Skipped) != 1 || doc.Skipped[0].Target != "db/pg-a/source/other" || doc.Skipped[0].Problem {
		t.Errorf("skipped: %+v", doc.Skipped)
	}
	b, _ := json.Marshal(doc.Policies[0].Document)
	var pol s3.IAMPolicy
	json.Unmarshal(b, &pol)
	got := map[string]string{}
	for _, st := range pol.Statement {
		got[st.Sid] = strings.Join(st.Action, ",") + " on " + strings.Join(st.Resource, ",")
		if st.Sid == s3.SidList {
			got[st.Sid] += " if " + strings.Join(toStrings(st.Condition["StringLike"]["s3:prefix"]), ",")
		}
	}
	want := map[string]string{
		s3.SidHeadBucket: "s3:ListBucket on arn:aws:s3:::b",
		s3.SidList:       "s3:ListBucket on arn:aws:s3:::b if prod/pg-a/*,prod/pg-src/*",
		s3.SidReadWrite:  "s3:PutObject,s3:GetObject,s3:DeleteObject,s3:AbortMultipartUpload on arn:aws:s3:::b/prod/pg-a/*",
		s3.SidRead:       "s3:GetObject on arn:aws:s3:::b/prod/pg-src/*",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("statements %v, want only %v", got, want)
	}
	// a second Cluster with another Secret on the same bucket: a policy of its own
	two := sharedS3 + "---\n" + strings.NewReplacer("pg-a", "pg-c", "name: c,", "name: other,", "  bootstrap: {recovery: {source: src}}\n", "").Replace(sharedS3[:strings.Index(sharedS3, "  externalClusters:")])
	doc, code, stderr = runPolicyJSON(t, two)
	if code != 0 || len(doc.Policies) != 2 {
		t.Fatalf("exit %d, %d policies: %s", code, len(doc.Policies), stderr)
	}
	if doc.Policies[1].Identity != "Secret db/other" || len(doc.Policies[1].Grants) != 1 || doc.Policies[1].Grants[0].Folder != "prod/pg-c/" {
		t.Errorf("second policy: %+v", doc.Policies[1])
	}
}

func toStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		for _, e := range x {
			out = append(out, e.(string))
		}
	case string:
		out = append(out, x)
	}
	return out
}

func TestPolicyTargetFlag(t *testing.T) {
	doc, code, _ := runPolicyJSON(t, sharedS3, "--target", "db/pg-a/recovery-source/src")
	if code != 0 || len(doc.Policies) != 1 || len(doc.Policies[0].Grants) != 1 || doc.Policies[0].Grants[0].Access != providers.ReadOnly {
		t.Fatalf("exit %d: %+v", code, doc)
	}
	b, _ := json.Marshal(doc.Policies[0].Document)
	if strings.Contains(string(b), "s3:PutObject") || strings.Contains(string(b), "s3:DeleteObject") {
		t.Errorf("a source's policy must only read: %s", b)
	}
	_, code, stderr := runPolicyJSON(t, sharedS3, "--target", "db/nope")
	if code != ExitUsage || !strings.Contains(stderr, "no target db/nope (the targets are db/pg-a/backup, db/pg-a/recovery-source/src, db/pg-a/source/other)") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	_, code, stderr = runPolicyJSON(t, sharedS3, "-o", "table")
	if code != ExitUsage || !strings.Contains(stderr, `unknown output format "table" (want commands, json or yaml)`) {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// Names from outside never reach a shell unquoted: a bucket name no store accepts gets no
// commands, and IAM wildcards in a folder are escaped.
func TestPolicyHostileNames(t *testing.T) {
	m := strings.NewReplacer("s3://b/prod", "s3://b/pr*d$x", "src", "src").Replace(sharedS3)
	doc, code, _ := runPolicyJSON(t, m, "--target", "db/pg-a/backup")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, _ := json.Marshal(doc.Policies[0].Document)
	if !strings.Contains(string(b), `arn:aws:s3:::b/pr${*}d${$}x/pg-a/*`) {
		t.Errorf("wildcards not escaped: %s", b)
	}
	m = strings.ReplaceAll(sharedS3, "s3://b/prod", "s3://b$(reboot)/prod")
	doc, code, stderr := runPolicyJSON(t, m, "--target", "db/pg-a/backup")
	if code != ExitFailed || len(doc.Policies) != 0 || !strings.Contains(stderr, "is not one a store accepts") {
		t.Errorf("exit %d, %d policies: %s", code, len(doc.Policies), stderr)
	}
}

// Live input: the Cluster and its ObjectStores are read, no Secret is (liveDyn counts none).
func TestLivePolicy(t *testing.T) {
	t.Parallel()
	dyn := newLiveDyn()
	code, stdout, stderr, _ := runLive(t, dyn, IOStreams{}, "policy", "--cluster", "pg", "-n", "db", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var doc PolicyDocument
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Policies) == 0 {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if p := doc.Policies[0]; p.Provider != "s3" || p.Bucket != "bucket" || p.Grants[0].Folder != "prefix/pg/" || p.Grants[0].Access != providers.ReadWrite {
		t.Errorf("policy %+v", p)
	}
	for _, c := range dyn.recorded() {
		if strings.Contains(c, " secrets ") {
			t.Errorf("policy read a Secret: %s", c)
		}
	}
}
