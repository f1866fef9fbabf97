package targets

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/all"
)

func TestBuildFromTestdata(t *testing.T) {
	set, err := manifest.Load([]string{"../testdata/clusters"}, nil, "default")
	if err != nil {
		t.Fatal(err)
	}
	ts := Build(set, func(ns string) providers.SecretLookup { return SecretsFromSet(set, ns) }, all.Registry(all.Settings{}))
	var got []string
	findings := map[string][]string{}
	for _, tg := range ts {
		got = append(got, fmt.Sprintf("%s server=%s field=%s", tg.ID, tg.ServerName, tg.Field))
		for _, f := range tg.Findings {
			findings[tg.ID] = append(findings[tg.ID], f.String())
		}
	}
	want := []string{
		"db/intree-backup/backup server=intree-backup field=spec.backup.barmanObjectStore",
		"db/intree-recovery/backup server=intree-recovery field=spec.backup.barmanObjectStore",
		"db/intree-recovery/recovery-source/origin server=intree-backup field=spec.externalClusters[0].barmanObjectStore",
		"db/intree-replica/replica-source/intree-backup server=intree-backup field=spec.externalClusters[0].barmanObjectStore",
		"db/plugin-backup/backup server=plugin-backup field=ObjectStore store: spec.configuration",
		"db/plugin-miswired/backup server=plugin-miswired field=ObjectStore named: spec.configuration",
		"db/plugin-miswired/source/origin server=plugin-miswired field=spec.externalClusters[0].plugin",
		"db/plugin-recovery/backup server=plugin-recovery field=ObjectStore store: spec.configuration",
		"db/plugin-recovery/recovery-source/origin server=plugin-backup field=ObjectStore store: spec.configuration",
		"db/plugin-replica/replica-source/origin server=plugin-replica field=ObjectStore store: spec.configuration",
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mis := strings.Join(findings["db/plugin-miswired/backup"], "\n")
	for _, w := range []string{"isWALArchiver is not set", "serverName is not allowed", "endpointUrl", `"30 days" is not a valid retention policy`} {
		if !strings.Contains(mis, w) {
			t.Errorf("plugin-miswired backup findings lack %q:\n%s", w, mis)
		}
	}
	if src := strings.Join(findings["db/plugin-miswired/source/origin"], "\n"); !strings.Contains(src, `there is one in namespace "other"`) {
		t.Errorf("source findings: %s", src)
	}
	for _, tg := range ts {
		if tg.ID == "db/plugin-backup/backup" {
			pt := tg.ProviderTarget()
			if fs := pt.LoadEnv(context.Background()); len(fs) > 0 || pt.Env["AWS_REQUEST_CHECKSUM_CALCULATION"] != "when_required" {
				t.Errorf("sidecar env not taken: %v %v", pt.Env, fs)
			}
		}
		if tg.ID == "db/plugin-replica/replica-source/origin" { // the plugin's serverName default
			if f := strings.Join(findings[tg.ID], "\n"); !strings.Contains(f, `parameters.serverName: not set: the plugin reads "origin"'s WAL from the folder "plugin-replica/"`) {
				t.Errorf("%s: findings %s", tg.ID, f)
			}
			continue
		}
		if strings.HasPrefix(tg.ID, "db/plugin-") && len(findings[tg.ID]) > 0 && !strings.Contains(tg.ID, "miswired") {
			t.Errorf("%s: unexpected findings %v", tg.ID, findings[tg.ID])
		}
	}
}

// TestRolesAndIDs: roles follow CNPG's IsReplica and the distributed topology; only the first
// entry of a name gets a role; IDs stay unique.
func TestRolesAndIDs(t *testing.T) {
	const store = "      destinationPath: s3://b/p\n      s3Credentials: {inheritFromIAMRole: true}\n"
	ec := func(name string) string { return "  - name: " + name + "\n    barmanObjectStore:\n" + store }
	cases := []struct{ name, spec, want string }{
		{"topology primary", "  replica: {self: a, primary: a, source: b}\n  externalClusters:\n" + ec("a") + ec("b"),
			"db/a/self/a db/a/peer-source/b"},
		{"topology replica, new", "  bootstrap: {recovery: {source: b}}\n  replica: {self: a, primary: b, source: b}\n  externalClusters:\n" + ec("a") + ec("b"),
			"db/a/self/a db/a/replica-source/b"},
		{"primary named by the Cluster's name, no self", "  replica: {primary: a, source: b}\n  externalClusters:\n" + ec("a") + ec("b"),
			"db/a/self/a db/a/peer-source/b"},
		{"promoted with a token: the recovery source is a peer now", "  bootstrap: {recovery: {source: b}}\n  replica: {primary: a, source: b, promotionToken: t}\n  externalClusters:\n" + ec("a") + ec("b"),
			"db/a/self/a db/a/peer-source/b"},
		{"new primary restoring from the peer", "  bootstrap: {recovery: {source: b}}\n  replica: {primary: a, source: b}\n  externalClusters:\n" + ec("a") + ec("b"),
			"db/a/self/a db/a/recovery-source/b"},
		{"rebuilt from its own archive", "  bootstrap: {recovery: {source: a}}\n  replica: {self: a, primary: a, source: b}\n  externalClusters:\n" + ec("a") + ec("b"),
			"db/a/recovery-source/a db/a/peer-source/b"},
		{"standalone replica", "  replica: {enabled: true, source: b}\n  externalClusters:\n" + ec("a") + ec("b"),
			"db/a/source/a db/a/replica-source/b"},
		{"enabled false", "  replica: {enabled: false, source: b}\n  externalClusters:\n" + ec("b"),
			"db/a/peer-source/b"},
		{"duplicate names", "  bootstrap: {recovery: {source: b}}\n  externalClusters:\n" + ec("b") + ec("b") + ec("c") + ec("c"),
			"db/a/recovery-source/b db/a/source/b db/a/source/c db/a/source/c#2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := manifest.NewSet()
			if err := set.Add("m.yaml", []byte("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a, namespace: db}\nspec:\n"+c.spec), "db"); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, tg := range Build(set, NoSecrets, all.Registry(all.Settings{})) {
				ids = append(ids, tg.ID)
			}
			if got := strings.Join(ids, " "); got != c.want {
				t.Errorf("targets %s, want %s", got, c.want)
			}
		})
	}
}
