package checks

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// segKey is the archive key of segment seg (16 MiB segments) on timeline tli.
func segKey(tli uint32, seg uint64) string {
	n := segmentName(tli, seg, 16<<20)
	return "p/pg/wals/" + n[:16] + "/" + n + ".gz"
}

// backupInfo is a completed backup of timeline tli from segment begin to end, ending at day d.
func backupInfo(tli uint32, begin, end uint64, d int) string {
	return fmt.Sprintf("status=DONE\nsystemid=1\ntimeline=%d\nbegin_wal=%s\nend_wal=%s\nbegin_xlog=%s\nend_xlog=%s\nbegin_time=2026-11-%02d 00:00:00+00:00\nend_time=2026-11-%02d 00:10:00+00:00\n",
		tli, segmentName(tli, begin, 16<<20), segmentName(tli, end, 16<<20), lsnText(begin<<24+0x28), lsnText(end<<24+0x100), d, d)
}

type archive map[string]string

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func (a archive) segs(tli uint32, from, to uint64) archive {
	for s := from; s <= to; s++ {
		a[segKey(tli, s)] = "x"
	}
	return a
}

func (a archive) without(tli uint32, segs ...uint64) archive {
	for _, s := range segs {
		delete(a, segKey(tli, s))
	}
	return a
}

func (a archive) backup(id string, tli uint32, begin, end uint64, d int) archive {
	a["p/pg/base/"+id+"/backup.info"] = backupInfo(tli, begin, end, d)
	return a
}

func runSource(t *testing.T, a archive, adjust func(*targets.Target)) *report.Target {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	store := providertest.NewMemStore(ep)
	store.PageSize = 7 // many pages
	for k, v := range a {
		store.Put(context.Background(), k, []byte(v), providers.PutOptions{})
	}
	d := memDriver{store}
	tg := target(targets.RoleRecoverySource, d)
	recovers(tg.Cluster)
	if adjust != nil {
		adjust(tg)
	}
	m := Execute(context.Background(), []*targets.Target{tg}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second,
		Now: func() time.Time { return time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) }})
	return m.Targets[0]
}

func TestRecoveryWindow(t *testing.T) {
	history2 := "1\t0/5000100\tno recovery target specified\n"
	target := func(f func(*manifest.RecoveryTarget)) func(*targets.Target) {
		return func(tg *targets.Target) {
			rt := &manifest.RecoveryTarget{}
			f(rt)
			tg.Cluster.Spec.Bootstrap.Recovery.RecoveryTarget = rt
		}
	}
	for _, c := range []struct {
		name    string
		a       archive
		adjust  func(*targets.Target)
		status  report.Status
		window  string // Window.String()
		message []string
	}{
		{"one timeline, no hole", archive{}.segs(1, 2, 10).backup("b1", 1, 2, 3, 1), nil, report.Pass,
			"recovery window 0/3000100 (timeline 1, 2026-11-01T00:10:00Z, end of backup b1) → 0/B000000 (timeline 1, 00000001000000000000000A), 9 segment(s)", []string{"needed by backup b1 present"}},
		{"a hole and no backup after it", archive{}.segs(1, 2, 10).without(1, 5, 6).backup("b1", 1, 2, 3, 1), nil, report.Fail,
			"recovery window 0/3000100 (timeline 1, 2026-11-01T00:10:00Z, end of backup b1) → 0/5000000 (timeline 1, 000000010000000000000004), 3 segment(s); first hole 000000010000000000000005–000000010000000000000006 (2 missing)",
			[]string{"no backup restores to the newest WAL 00000001000000000000000A, replay stops at 0/5000000"}},
		{"a hole before the newest backup", archive{}.segs(1, 2, 10).without(1, 5).backup("b1", 1, 2, 3, 1).backup("b2", 1, 7, 7, 2), nil, report.Warn,
			"recovery window 0/7000100 (timeline 1, 2026-11-02T00:10:00Z, end of backup b2) → 0/B000000 (timeline 1, 00000001000000000000000A), 4 segment(s); first hole 000000010000000000000005–000000010000000000000005 (1 missing)",
			[]string{"restore points before the end of backup b2 cannot be reached past it"}},
		{"across a timeline switch", archive{"p/pg/wals/00000002.history.gz": gz(history2)}.segs(1, 2, 6).segs(2, 5, 8).backup("b1", 1, 2, 3, 1), nil, report.Pass,
			"recovery window 0/3000100 (timeline 1, 2026-11-01T00:10:00Z, end of backup b1) → 0/9000000 (timeline 2, 000000020000000000000008), 7 segment(s)", []string{"timeline(s) 1, 2"}},
		{"a hole on the new timeline", archive{"p/pg/wals/00000002.history": history2}.segs(1, 2, 6).segs(2, 5, 8).without(2, 5).backup("b1", 1, 2, 3, 1), nil, report.Fail,
			"first hole 000000020000000000000005–000000020000000000000005 (1 missing)", nil},
		{"the old timeline after its switch point is not expected", archive{"p/pg/wals/00000002.history": history2}.segs(1, 2, 4).segs(2, 5, 8).backup("b1", 1, 2, 3, 1), nil, report.Pass,
			"7 segment(s)", nil},
		{"a timeline without its history file", archive{}.segs(1, 2, 4).segs(2, 5, 8).backup("b1", 1, 2, 3, 1), nil, report.Fail,
			"", []string{"timeline 2 has WAL but no 00000002.history"}},
		{"end_wal never archived", archive{}.segs(1, 2, 3).backup("b1", 1, 2, 3, 1).backup("b2", 1, 5, 6, 2).segs(1, 5, 5), nil, report.Fail,
			"", []string{"end_wal was never archived, which cannot be restored: b2 (end_wal 000000010000000000000006)", "missing from p/pg/wals/: 000000010000000000000006"}},
		{"retentionPolicy starts the window", archive{}.segs(1, 5, 12).backup("b1", 1, 2, 3, 1).backup("b2", 1, 6, 6, 20).backup("b3", 1, 9, 9, 27), func(tg *targets.Target) {
			tg.Store = &manifest.ObjectStore{Spec: manifest.ObjectStoreSpec{RetentionPolicy: "7d"}}
		}, report.Pass, "recovery window 0/6000100 (timeline 1, 2026-11-20T00:10:00Z, end of backup b2)", nil},
		{"targetLSN past a hole", archive{}.segs(1, 2, 10).without(1, 5).backup("b1", 1, 2, 3, 1), target(func(rt *manifest.RecoveryTarget) { rt.TargetLSN = "0/8000000" }), report.Fail,
			"", []string{"targetLSN 0/8000000 lies past the hole at 000000010000000000000005"}},
		{"targetLSN inside the window", archive{}.segs(1, 2, 10).backup("b1", 1, 2, 3, 1), target(func(rt *manifest.RecoveryTarget) { rt.TargetLSN = "0/8000000" }), report.Pass, "", nil},
		{"targetXID is not judged", archive{}.segs(1, 2, 10).backup("b1", 1, 2, 3, 1), target(func(rt *manifest.RecoveryTarget) { rt.TargetXID = "1234" }), report.Pass,
			"", []string{"not judged"}},
		{"backupID unknown", archive{}.segs(1, 2, 10).backup("b1", 1, 2, 3, 1), target(func(rt *manifest.RecoveryTarget) { rt.BackupID = "b9" }), report.Fail,
			"", []string{"backupID b9 is not a completed backup"}},
		{"targetTLI 2 present", archive{"p/pg/wals/00000002.history": history2}.segs(1, 2, 6).segs(2, 5, 8).backup("b1", 1, 2, 3, 1), target(func(rt *manifest.RecoveryTarget) { rt.TargetTLI = "2" }), report.Pass, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := runSource(t, c.a, c.adjust)
			w := tg.Check(WALArchive)
			if w.Status != c.status {
				t.Errorf("wal-archive = %s, want %s: %s", w.Status, c.status, w.Message)
			}
			if !strings.Contains(tg.RecoveryWindow.String(), c.window) {
				t.Errorf("window %q, want %q", tg.RecoveryWindow.String(), c.window)
			}
			for _, m := range c.message {
				if !strings.Contains(w.Message, m) {
					t.Errorf("message lacks %q: %s", m, w.Message)
				}
			}
			t.Logf("%s: %s", w.Status, w.Message)
		})
	}
}

// The window costs one listing: requests grow with the archive only by its listing pages.
func TestRecoveryWindowListsOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ep, _ := url.Parse(srv.URL)
	for _, n := range []uint64{100, 5000} {
		store := providertest.NewMemStore(ep)
		a := archive{}.segs(1, 1, n).backup("b1", 1, 1, 2, 1)
		for k, v := range a {
			store.Put(context.Background(), k, []byte(v), providers.PutOptions{})
		}
		d := memDriver{store}
		tg := target(targets.RoleRecoverySource, d)
		recovers(tg.Cluster)
		m := Execute(context.Background(), []*targets.Target{tg}, Options{Registry: providers.NewRegistry(d), Timeout: 5 * time.Second, ReadOnly: true})
		pages := store.Pages()
		walPages := int(n/1000) + 1
		// list (2), backups (1), wal-archive (walPages), system-id (none: wal-archive hands on the newest), read (1)
		if pages > walPages+6 {
			t.Errorf("%d segments: %d listing pages, want at most %d", n, pages, walPages+6)
		}
		if s := m.Targets[0].RecoveryWindow; s == nil || s.Segments != int(n) {
			t.Errorf("%d segments: window %+v", n, s)
		}
	}
}
