// Package providertest is the contract every providers.Store honours, as one exported suite that
// each provider's own tests run against its real server, and an in-memory Store that honours the
// same contract for the unit tests of the checks.
package providertest

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Opener opens a provider's Store on a fresh, empty bucket (or container) and, with missing,
// on one that does not exist. The prefix used by the suite is "acc/".
type Opener func(t *testing.T, missing bool) providers.Store

// Options tune the suite for one provider.
type Options struct {
	// PageKeys writes that many keys to check that List follows continuation pages (0: skip);
	// it must exceed the store's page size to be meaningful (S3 and GCS: 1,000).
	PageKeys int
}

// Run runs the Store contract.
func Run(t *testing.T, open Opener, o Options) {
	ctx := context.Background()
	t.Run("bucket", func(t *testing.T) {
		if err := open(t, false).CheckBucket(ctx); err != nil {
			t.Fatalf("CheckBucket: %v", err)
		}
		if err := open(t, true).CheckBucket(ctx); providers.KindOf(err) != providers.KindNotFound {
			t.Errorf("CheckBucket on a missing bucket: kind %s (%v), want not-found", providers.KindOf(err), err)
		}
	})
	t.Run("objects", func(t *testing.T) {
		s := open(t, false)
		keys := []string{"acc/pg/a", "acc/pg/wals/0000000100000000/000000010000000000000001", "acc/pg/wals/0000000100000000/000000010000000000000002", "acc/pg/base/b1/backup.info"}
		for i, k := range keys {
			if err := s.Put(ctx, k, []byte(strings.Repeat("x", i+1)), providers.PutOptions{}); err != nil {
				t.Fatalf("Put %s: %v", k, err)
			}
		}
		got, err := s.Get(ctx, keys[1], 1<<20)
		if err != nil || !bytes.Equal(got, []byte("xx")) {
			t.Errorf("Get: %q %v", got, err)
		}
		l, err := s.List(ctx, "acc/pg/", "/", 0)
		sort.Strings(l.Prefixes)
		if err != nil || len(l.Keys) != 1 || l.Keys[0].Key != "acc/pg/a" || l.Keys[0].Size != 1 || strings.Join(l.Prefixes, ",") != "acc/pg/base/,acc/pg/wals/" || l.Truncated {
			t.Errorf("List with delimiter: %+v %v", l, err)
		}
		l, err = s.List(ctx, "acc/pg/wals/", "", 1)
		if err != nil || len(l.Keys) != 1 || !l.Truncated || l.Keys[0].Key != keys[1] {
			t.Errorf("List with max 1: %+v %v", l, err)
		}
		l, err = s.List(ctx, "acc/pg/wals/", "", 2)
		if err != nil || len(l.Keys) != 2 || l.Truncated {
			t.Errorf("List with max 2 of 2: %+v %v", l, err)
		}
		l, err = s.List(ctx, "acc/pg/", "", 0)
		if err != nil || len(l.Keys) != 4 || l.Truncated {
			t.Errorf("recursive List: %+v %v", l, err)
		}
		if ok, err := s.Exists(ctx, keys[0]); !ok || err != nil {
			t.Errorf("Exists: %v %v", ok, err)
		}
		if got, err := s.Get(ctx, keys[3], 2); err != nil || string(got) != "xx" {
			t.Errorf("Get of 2 bytes of a 4-byte object: %q %v", got, err)
		}
		if err := s.Put(ctx, "acc/pg/empty", nil, providers.PutOptions{}); err != nil {
			t.Fatalf("Put of an empty object: %v", err)
		}
		if got, err := s.Get(ctx, "acc/pg/empty", 10); err != nil || len(got) != 0 {
			t.Errorf("Get of an empty object: %q %v", got, err)
		}
		s.Delete(ctx, "acc/pg/empty")
		if err := s.Delete(ctx, keys[0]); err != nil {
			t.Errorf("Delete %s: %v", keys[0], err)
		}
		if err := s.DeleteBatch(ctx, keys[1:]); err != nil {
			t.Errorf("DeleteBatch %v: %v", keys[1:], err)
		}
		if l, err := s.List(ctx, "acc/pg/", "", 0); err != nil || len(l.Keys) != 0 {
			t.Errorf("after Delete and DeleteBatch: %+v %v", l.Keys, err)
		}
		if ok, err := s.Exists(ctx, keys[0]); ok || err != nil {
			t.Errorf("Exists after delete: %v %v", ok, err)
		}
		if _, err := s.Get(ctx, keys[0], 1<<20); providers.KindOf(err) != providers.KindNotFound {
			t.Errorf("Get after delete: kind %s (%v)", providers.KindOf(err), err)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		s := open(t, false)
		parts := [][]byte{bytes.Repeat([]byte("p"), s.MinPartSize()), []byte("tail")}
		up, err := s.StartMultipart(ctx, "acc/pg/mp", parts, providers.PutOptions{})
		if err != nil {
			t.Fatalf("StartMultipart: %v", err)
		}
		if ok, _ := s.Exists(ctx, "acc/pg/mp"); ok {
			t.Error("the object exists before Complete")
		}
		if err := up.Complete(ctx); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		// reads are capped (providers.MaxResponseBody): the size comes from the listing
		l, err := s.List(ctx, "acc/pg/mp", "", 1)
		if err != nil || len(l.Keys) != 1 || l.Keys[0].Size != int64(s.MinPartSize()+4) {
			t.Errorf("multipart object: %+v %v", l.Keys, err)
		}
		if got, err := s.Get(ctx, "acc/pg/mp", 1024); err != nil || len(got) != min(1024, s.MinPartSize()+4) || got[0] != 'p' {
			t.Errorf("the multipart object's first bytes: %d %v", len(got), err)
		}
		s.Delete(ctx, "acc/pg/mp")
		up, err = s.StartMultipart(ctx, "acc/pg/mp2", parts, providers.PutOptions{})
		if err != nil {
			t.Fatalf("StartMultipart: %v", err)
		}
		if err := up.Abort(ctx); err != nil {
			t.Errorf("Abort: %v", err)
		}
		if ok, _ := s.Exists(ctx, "acc/pg/mp2"); ok {
			t.Error("an uncompleted multipart upload left an object")
		}
		if l, _ := s.List(ctx, "acc/", "", 0); len(l.Keys) != 0 {
			t.Errorf("objects left: %+v", l.Keys)
		}
	})
	t.Run("policies", func(t *testing.T) {
		// a fresh bucket made with the root identity: nothing versioned, locked or expiring,
		// and every setting the provider reads is readable
		p, err := open(t, false).Policies(ctx)
		if err != nil {
			t.Fatalf("Policies: %v", err)
		}
		if p.Versioning == "Enabled" || p.ObjectLock || p.DefaultRetention != 0 || p.LocksOverwrites || p.EventBasedHold || p.Immutability || p.LegalHold || len(p.Rules) != 0 {
			t.Errorf("Policies of a fresh bucket: %+v", p)
		}
		for _, u := range p.Unread {
			if u.Permission != "" {
				t.Errorf("the root identity could not read %s: %s", u.Setting, u.Msg)
			}
		}
		if _, err := open(t, true).Policies(ctx); providers.KindOf(err) != providers.KindNotFound {
			t.Errorf("Policies of a missing bucket: kind %s (%v), want not-found", providers.KindOf(err), err)
		}
	})
	if o.PageKeys > 0 {
		t.Run("pages", func(t *testing.T) {
			s := open(t, false)
			n := o.PageKeys
			var wg sync.WaitGroup
			sem := make(chan struct{}, 16)
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					if err := s.Put(ctx, fmt.Sprintf("acc/pg/many/%05d", i), []byte("x"), providers.PutOptions{}); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Put: %v", err)
			}
			l, err := s.List(ctx, "acc/pg/many/", "", 0)
			if err != nil || len(l.Keys) != n || l.Truncated || l.Keys[n-1].Key != fmt.Sprintf("acc/pg/many/%05d", n-1) {
				t.Errorf("List of %d keys: %d keys, truncated %v, %v", n, len(l.Keys), l.Truncated, err)
			}
			l, err = s.List(ctx, "acc/pg/many/", "", n-1)
			if err != nil || len(l.Keys) != n-1 || !l.Truncated {
				t.Errorf("List of %d with max %d: %d keys, truncated %v, %v", n, n-1, len(l.Keys), l.Truncated, err)
			}
			l, err = s.List(ctx, "acc/pg/", "/", 0)
			if err != nil || len(l.Keys) != 0 || len(l.Prefixes) != 1 {
				t.Errorf("List with delimiter over %d keys: %+v %v", n, l.Prefixes, err)
			}
		})
	}
}
