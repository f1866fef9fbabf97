package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// windowStat is the cost of a source's recovery-window check on an archive of n segments.
type windowStat struct {
	Segments      int     `json:"segments"`
	SeedSeconds   float64 `json:"seedSeconds"` // seeding with minio-go (not part of the check)
	Runs          int     `json:"runs"`
	WallMs        float64 `json:"wallMsMedian"`
	CPUMs         float64 `json:"cpuMsMedian"`
	RSSMiB        float64 `json:"peakRssMiBMedian"`
	Requests      int64   `json:"requests"`      // the tool's own count for the target
	ProxyRequests int64   `json:"proxyRequests"` // counted by a proxy in front of MinIO (one run)
	WALArchiveMs  int64   `json:"walArchiveMs"`  // the wal-archive check alone
	Status        string  `json:"walArchive"`
	Window        string  `json:"window"`
}

// benchWindow seeds archives of 10,000 and 100,000 WAL segments (16 MiB names on timeline 1, tiny
// bodies; the newest a real PostgreSQL 15 segment for system-id) and a completed backup with the
// independent client (minio-go), then times a recovery-source check of each. The 100k archive is
// checked once.
func benchWindow(bin, tmp string, sizes []int) []windowStat {
	ep := env["MINIO_ENDPOINT"]
	host := strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
	c, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"], ""), Region: "us-east-1"})
	must(err)
	real, err := os.ReadFile("checks/testdata/wal/000000010000000000000002.gz")
	must(err)
	var out []windowStat
	for _, n := range sizes {
		ctx := context.Background()
		bucket := fmt.Sprintf("bench-window-%d-%d", n, time.Now().Unix())
		must(c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}))
		start := time.Now()
		keys := make(chan int)
		var wg sync.WaitGroup
		body := []byte("cnpg-preflight bench: not a real WAL segment\n")
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range keys {
					name := fmt.Sprintf("%08X%08X%08X", 1, i/256, i%256)
					data := body
					if i == n {
						data = real
					}
					for attempt := 0; ; attempt++ {
						_, err := c.PutObject(ctx, bucket, "pg/src/wals/"+name[:16]+"/"+name+".gz", strings.NewReader(string(data)), int64(len(data)), minio.PutObjectOptions{})
						if err == nil || attempt == 5 {
							must(err)
							break
						}
						time.Sleep(time.Second)
					}
				}
			}()
		}
		for i := 1; i <= n; i++ {
			keys <- i
		}
		close(keys)
		wg.Wait()
		info := "status=DONE\nsystemid=7714714304834387594\ntimeline=1\nbegin_wal=000000010000000000000001\nend_wal=000000010000000000000002\nbegin_xlog=0/1000028\nend_xlog=0/2000100\nbegin_time=2026-11-01 00:00:00+00:00\nend_time=2026-11-01 00:10:00+00:00\nxlog_segment_size=16777216\n"
		_, err := c.PutObject(ctx, bucket, "pg/src/base/20261101T000000/backup.info", strings.NewReader(info), int64(len(info)), minio.PutObjectOptions{})
		must(err)
		seed := time.Since(start)

		doc := func(endpoint string) string {
			return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: bench}
stringData: {id: %s, secret: %s}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: restored, namespace: bench}
spec:
  bootstrap:
    recovery: {source: src}
  externalClusters:
  - name: src
    barmanObjectStore:
      destinationPath: s3://%s/pg
      endpointURL: %s
      s3Credentials:
        accessKeyId: {name: creds, key: id}
        secretAccessKey: {name: creds, key: secret}
`, env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"], bucket, endpoint)
		}
		path := filepath.Join(tmp, fmt.Sprintf("window-%d.yaml", n))
		os.WriteFile(path, []byte(doc(ep)), 0o644)
		argv := []string{bin, "check", "-f", path, "-o", "json", "--timeout", "300s"}
		runs := 3
		if n >= 100000 {
			runs = 1 // seeded and checked once
		}
		var ss []sample
		var last *report.Matrix
		for i := 0; i < runs; i++ {
			smp, m := measureJSON(argv)
			ss, last = append(ss, smp), m
		}
		st := summarize(fmt.Sprintf("%d segments", n), ss)
		ws := windowStat{Segments: n, SeedSeconds: round(seed.Seconds()), Runs: runs, WallMs: st.WallMs, CPUMs: st.CPUMs, RSSMiB: st.RSSMiB}
		fill(&ws, last)
		if runs > 1 { // cross-check the tool's request count through a counting proxy (not for 100k: checked once)
			proxy, count := countingProxy(ep, 0)
			viaProxy := filepath.Join(tmp, fmt.Sprintf("window-%d-proxy.yaml", n))
			os.WriteFile(viaProxy, []byte(doc(proxy)), 0o644)
			runJSON(bin, "check", "-f", viaProxy, "-o", "json", "--timeout", "300s")
			ws.ProxyRequests = count.Load()
		}
		out = append(out, ws)
		mc(tmp, "rb", "--force", "local/"+bucket)
	}
	return out
}

func fill(ws *windowStat, m *report.Matrix) {
	if m == nil || len(m.Targets) == 0 {
		return
	}
	t := m.Targets[0]
	ws.Requests = t.Requests
	if c := t.Check("wal-archive"); c != nil {
		ws.Status, ws.WALArchiveMs = string(c.Status), c.DurationMs
	}
	ws.Window = t.RecoveryWindow.String()
}

// measureJSON is measure, keeping the JSON report of the run.
func measureJSON(argv []string) (sample, *report.Matrix) {
	var out bytes.Buffer
	s := measureTo(argv, nil, &out)
	var m report.Matrix
	if json.Unmarshal(out.Bytes(), &m) != nil {
		return s, nil
	}
	return s, &m
}

func windowMarkdown(ws []windowStat) string {
	if len(ws) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Recovery window of a source (MinIO, WAL segments seeded with minio-go)\n\n| segments | wall ms | CPU ms | peak RSS MiB | requests (tool / proxy) | wal-archive ms | verdict | runs |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range ws {
		proxy := "–"
		if s.ProxyRequests > 0 {
			proxy = fmt.Sprint(s.ProxyRequests)
		}
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.1f | %d / %s | %d | %s | %d |\n", s.Segments, s.WallMs, s.CPUMs, s.RSSMiB, s.Requests, proxy, s.WALArchiveMs, s.Status, s.Runs)
	}
	for _, s := range ws {
		fmt.Fprintf(&b, "\n%d segments (seeded in %.0f s): %s\n", s.Segments, s.SeedSeconds, s.Window)
	}
	return b.String()
}
