package s3

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// S3 answers of a versioned, locked bucket with lifecycle rules, in the documented XML shapes
// (MinIO's own answers are covered by the integration tests).
const (
	versioningXML = `<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>`
	lockXML       = `<?xml version="1.0" encoding="UTF-8"?><ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>90</Days></DefaultRetention></Rule></ObjectLockConfiguration>`
	lifecycleXML  = `<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
		`<Rule><ID>wals</ID><Filter><Prefix>prefix/pg/wals/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>14</Days></Expiration></Rule>` +
		`<Rule><ID>old</ID><Filter><And><Prefix>prefix/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays></NoncurrentVersionExpiration></Rule>` +
		`<Rule><ID>cold</ID><Filter></Filter><Status>Disabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition><Transition><Days>10</Days><StorageClass>STANDARD_IA</StorageClass></Transition></Rule>` +
		`</LifecycleConfiguration>`
)

func TestPoliciesReadsTheBucketSettings(t *testing.T) {
	serve := func(t *testing.T, replies map[string]s3Reply) *Store {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			for _, k := range []string{"versioning", "object-lock", "lifecycle"} {
				if _, ok := q[k]; !ok {
					continue
				}
				if rp, ok := replies[k]; ok {
					rp.write(w)
					return
				}
				w.Header().Set("Content-Type", "application/xml")
				w.Write([]byte(map[string]string{"versioning": versioningXML, "object-lock": lockXML, "lifecycle": lifecycleXML}[k]))
				return
			}
			http.NotFound(w, r)
		}))
		t.Cleanup(srv.Close)
		return connect(t, srv.URL, false)
	}
	t.Run("versioned, locked, with rules", func(t *testing.T) {
		p, err := serve(t, nil).Policies(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if p.Versioning != "Enabled" || !p.ObjectLock || p.LockMode != "COMPLIANCE" || p.DefaultRetention != 90*24*time.Hour || p.LocksOverwrites || len(p.Unread) != 0 {
			t.Errorf("policies %+v", p)
		}
		want := []providers.LifecycleRule{
			{ID: "wals", Prefix: "prefix/pg/wals/", Enabled: true, ExpireDays: 14},
			{ID: "old", Prefix: "prefix/", Enabled: true, Filtered: true, NoncurrentDays: 7},
			{ID: "cold", Enabled: false, TransitionDays: 30, TransitionClass: "GLACIER", NeedsRestore: true},
		}
		if len(p.Rules) != len(want) {
			t.Fatalf("rules %+v", p.Rules)
		}
		for i := range want {
			if p.Rules[i] != want[i] {
				t.Errorf("rule %d: %+v, want %+v", i, p.Rules[i], want[i])
			}
		}
	})
	t.Run("nothing set, lifecycle denied", func(t *testing.T) {
		p, err := serve(t, map[string]s3Reply{
			"versioning":  {200, "", "", nil},
			"object-lock": {404, "ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket", nil},
			"lifecycle":   {403, "AccessDenied", "Access Denied. " + testSecretKey, nil},
		}).Policies(context.Background())
		if err != nil || p.Versioning != "" || p.ObjectLock || len(p.Rules) != 0 || len(p.Unread) != 1 {
			t.Fatalf("policies %+v %v", p, err)
		}
		u := p.Unread[0]
		if u.Setting != "lifecycle rules" || u.Permission != "s3:GetLifecycleConfiguration on arn:aws:s3:::bucket" || strings.Contains(u.Msg, testSecretKey) {
			t.Errorf("unread %+v", u)
		}
	})
	t.Run("the store offers no lifecycle", func(t *testing.T) {
		p, err := serve(t, map[string]s3Reply{"lifecycle": {501, "NotImplemented", "A header you provided implies functionality that is not implemented", nil}}).Policies(context.Background())
		if err != nil || len(p.Unread) != 1 || p.Unread[0].Permission != "" {
			t.Errorf("policies %+v %v", p, err)
		}
	})
}
