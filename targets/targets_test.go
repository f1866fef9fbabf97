package targets

import (
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
		if tg.ID == "db/plugin-backup/backup" && tg.Env["AWS_REQUEST_CHECKSUM_CALCULATION"] != "when_required" {
			t.Errorf("sidecar env not taken: %v", tg.Env)
		}
		if strings.HasPrefix(tg.ID, "db/plugin-") && len(findings[tg.ID]) > 0 && !strings.Contains(tg.ID, "miswired") {
			t.Errorf("%s: unexpected findings %v", tg.ID, findings[tg.ID])
		}
	}
}
