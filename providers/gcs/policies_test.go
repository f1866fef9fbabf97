package gcs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// The GCS emulator (fake-gcs-server) keeps no retention policy, hold, soft delete or lifecycle
// rule, so Policies is tested here on buckets.get answers in the JSON API's documented shape
// (testdata/bucket-*.json) served to the real client, and on a 403.
func TestPoliciesFromBucketMetadata(t *testing.T) {
	serve := func(t *testing.T, status int, file string) *Store {
		body := []byte(`{"error":{"code":403,"message":"acc@test.iam.gserviceaccount.com does not have storage.buckets.get access","errors":[{"reason":"forbidden"}]}}`)
		if file != "" {
			var err error
			if body, err = os.ReadFile(file); err != nil {
				t.Fatal(err)
			}
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/storage/v1/b/pg-backups" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write(body)
		}))
		t.Cleanup(srv.Close)
		c, err := storage.NewClient(context.Background(), option.WithEndpoint(srv.URL+"/storage/v1/"), option.WithoutAuthentication(), option.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		c.SetRetry(storage.WithMaxAttempts(1))
		loc := providers.Location{Provider: "gcs", Bucket: "pg-backups", Prefix: "prod", ServerName: "pg"}
		return &Store{c: c, b: c.Bucket("pg-backups"), loc: loc, red: &providers.Redactor{}}
	}
	t.Run("locked bucket", func(t *testing.T) {
		p, err := serve(t, 200, "testdata/bucket-locked.json").Policies(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if p.Versioning != "Enabled" || !p.EventBasedHold || !p.LocksOverwrites || p.DefaultRetention != 90*24*time.Hour || p.LockMode != "locked" || p.SoftDelete != 14*24*time.Hour {
			t.Errorf("policies %+v", p)
		}
		want := []providers.LifecycleRule{
			{Prefix: "prod/pg/wals/", Enabled: true, ExpireDays: 14},
			{Enabled: true, NoncurrentDays: 7},
			{Enabled: true, TransitionDays: 60, TransitionClass: "ARCHIVE"},
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
	t.Run("plain bucket", func(t *testing.T) {
		p, err := serve(t, 200, "testdata/bucket-plain.json").Policies(context.Background())
		if err != nil || p.Versioning != "" || p.LocksOverwrites || len(p.Rules) != 0 || p.SoftDelete != 7*24*time.Hour || len(p.Unread) != 0 {
			t.Errorf("policies %+v %v", p, err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		p, err := serve(t, 403, "").Policies(context.Background())
		if err != nil || len(p.Unread) != 1 || !strings.Contains(p.Unread[0].Permission, "storage.buckets.get") {
			t.Errorf("policies %+v %v", p, err)
		}
	})
}
