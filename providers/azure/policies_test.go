package azure

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Azure answers of a container with a legal hold on an account with blob soft delete, in the
// documented shapes (Azurite has neither).
func TestPoliciesReadsContainerAndServiceProperties(t *testing.T) {
	serve := func(t *testing.T, denied bool) *Store {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			w.Header().Set("x-ms-version", "2022-11-02")
			if denied {
				w.Header().Set("x-ms-error-code", "AuthorizationPermissionMismatch")
				w.WriteHeader(http.StatusForbidden)
				return
			}
			switch {
			case q.Get("restype") == "container" && q.Get("comp") == "":
				w.Header().Set("x-ms-has-immutability-policy", "false")
				w.Header().Set("x-ms-has-legal-hold", "true")
				w.WriteHeader(http.StatusOK)
			case q.Get("restype") == "service" && q.Get("comp") == "properties":
				w.Header().Set("Content-Type", "application/xml")
				fmt.Fprint(w, `<?xml version="1.0" encoding="utf-8"?><StorageServiceProperties><DeleteRetentionPolicy><Enabled>true</Enabled><Days>14</Days></DeleteRetentionPolicy></StorageServiceProperties>`)
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		return connectAzure(t, &fakeAzure{Server: srv}, viaConnectionString)
	}
	p, err := serve(t, false).Policies(context.Background())
	if err != nil || !p.LegalHold || p.Immutability || !p.LocksOverwrites || p.SoftDelete != 14*24*time.Hour || len(p.Unread) != 0 {
		t.Errorf("policies %+v %v", p, err)
	}
	p, err = serve(t, true).Policies(context.Background())
	if err != nil || len(p.Unread) != 2 || !strings.Contains(p.Unread[0].Permission, "a container SAS cannot read them") || !strings.Contains(p.Unread[1].Permission, "srt including s") {
		t.Errorf("policies %+v %v", p, err)
	}
	for _, u := range p.Unread {
		if strings.Contains(u.Msg, "SECRETSIG") {
			t.Errorf("the signature leaks: %s", u.Msg)
		}
	}
}
