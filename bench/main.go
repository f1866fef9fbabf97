// Command bench measures cnpg-preflight against barman-cloud-check-wal-archive and the AWS CLI
// script users write today, counts round trips, adds latency, scales a fleet and times the
// offline lint. It needs the servers of scripts/servers.sh; `make bench` starts them.
// Results: bench/results/results.json and bench/results/summary.md.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/report"
)

type sample struct {
	Wall, CPU time.Duration
	RSSKiB    int64
	Exit      int
}

type stat struct {
	Name       string  `json:"name"`
	Runs       int     `json:"runs"`
	WallMs     float64 `json:"wallMsMedian"`
	CPUMs      float64 `json:"cpuMsMedian"`
	RSSMiB     float64 `json:"peakRssMiBMedian"`
	ExitCodes  []int   `json:"exitCodes"`
	Note       string  `json:"note,omitempty"`
	Requests   int64   `json:"requests,omitempty"`
	Targets    int     `json:"targets,omitempty"`
	Concurrent int     `json:"concurrency,omitempty"`
	// ServerCPUMs is the CPU time MinIO spent during the run (process mode only: read from its
	// pid file), the other half of a fleet run on a machine that runs both.
	ServerCPUMs float64 `json:"serverCpuMs,omitempty"`
	// StealMs is the CPU time the hypervisor gave to others during the run, summed over the
	// machine's CPUs (/proc/stat): on a shared host the same run varies by 1.5–2× with it.
	StealMs float64 `json:"stealMs,omitempty"`
}

type results struct {
	Date        string             `json:"date"`
	Machine     string             `json:"machine"`
	OneTarget   []stat             `json:"oneTarget"`
	Ratios      map[string]float64 `json:"ratios"`
	RoundTrips  map[string]any     `json:"roundTrips"`
	Latency     map[string]any     `json:"latency"`
	Fleet       []stat             `json:"fleet"`
	Concurrency []stat             `json:"concurrencyChoice"`
	Lint        stat               `json:"lint"`
	Hostile     []stat             `json:"hostileStreams"`
	Startup     *startupStat       `json:"startup,omitempty"`
	Serve       *serveStat         `json:"serve,omitempty"`
	Window      []windowStat       `json:"recoveryWindow,omitempty"`
}

var env = map[string]string{}

// barmanArgv runs a barman-cloud command of the reference client, barman 3.13 in the Debian 13 root
// (scripts/build-barman.sh, mounted by scripts/servers.sh), or the machine's own when there is none.
// chroot(8) execs the command: the RSS measured is barman's.
func barmanArgv(name string) []string {
	if root := env["BARMAN_ROOT"]; root != "" {
		return []string{"/usr/sbin/chroot", root, "/usr/bin/" + name}
	}
	return []string{"/usr/bin/" + name}
}

// barmanVersion is the version of the reference client, e.g. "3.13.3".
func barmanVersion() string {
	argv := barmanArgv("barman-cloud-check-wal-archive")
	out, err := exec.Command(argv[0], append(argv[1:], "--version")...).CombinedOutput()
	if err != nil {
		return "(version unknown)"
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "barman-cloud-check-wal-archive"))
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func run() error {
	f, err := os.Open(os.Getenv("CNPG_PREFLIGHT_SERVERS"))
	if err != nil {
		return fmt.Errorf("servers.env: %w (run scripts/servers.sh start)", err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	f.Close()
	bin, _ := filepath.Abs(os.Args[1])
	out := "bench/results"
	tmp, _ := os.MkdirTemp("", "pf-bench-")
	defer os.RemoveAll(tmp)
	rusageBin = filepath.Join(tmp, "rusage")
	if b, err := exec.Command("go", "build", "-o", rusageBin, "./bench/rusage").CombinedOutput(); err != nil {
		return fmt.Errorf("building bench/rusage: %v: %s", err, b)
	}
	switch os.Getenv("BENCH_ONLY") { // a quick look at one section, nothing recorded
	case "hostile":
		fmt.Print(markdown(results{Hostile: hostileStreams(bin, tmp)}))
		return nil
	case "startup":
		fmt.Print(startup(bin, tmp).markdown())
		return nil
	case "window": // recorded into the last results (seeding 100k objects takes minutes)
		var last results
		if b, err := os.ReadFile(filepath.Join(out, "results.json")); err == nil {
			json.Unmarshal(b, &last)
		}
		last.Window = benchWindow(bin, tmp, []int{10000, 100000})
		return write(out, last)
	}
	res := results{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Ratios: map[string]float64{}}
	endpoint := env["MINIO_ENDPOINT"]
	bucket := "bench-" + fmt.Sprint(time.Now().Unix())
	mc(tmp, "mb", "local/"+bucket)
	defer mc(tmp, "rb", "--force", "local/"+bucket)
	if len(os.Args) > 2 && os.Args[2] == "serve" { // only the serve measurement, into the last results
		b, err := os.ReadFile(filepath.Join(out, "results.json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
		res.Serve = benchServe(bin, tmp, bucket, endpoint)
		return write(out, res)
	}

	// 1. One target, full matrix, vs barman-cloud-check-wal-archive and the AWS CLI script.
	one := filepath.Join(tmp, "one.yaml")
	os.WriteFile(one, []byte(clusters(bucket, endpoint, 1)), 0o644)
	awsScript := filepath.Join(tmp, "aws.sh")
	os.WriteFile(awsScript, []byte(fmt.Sprintf(`#!/bin/sh
set -e
export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=us-east-1
echo probe > %s/probe.txt
aws --endpoint-url %s s3 cp %s/probe.txt s3://%s/aws/probe.txt >/dev/null
aws --endpoint-url %s s3 cp s3://%s/aws/probe.txt - >/dev/null
aws --endpoint-url %s s3 ls s3://%s/aws/ >/dev/null
aws --endpoint-url %s s3 rm s3://%s/aws/probe.txt >/dev/null
`, env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"], tmp, endpoint, tmp, bucket, endpoint, bucket, endpoint, bucket, endpoint, bucket)), 0o755)
	barmanEnv := []string{"AWS_ACCESS_KEY_ID=" + env["MINIO_ROOT_USER"], "AWS_SECRET_ACCESS_KEY=" + env["MINIO_ROOT_PASSWORD"]}
	cmds := []struct {
		name string
		argv []string
		env  []string
	}{
		{"cnpg-preflight (full matrix)", []string{bin, "check", "-f", one, "-o", "json"}, nil},
		{"barman-cloud-check-wal-archive " + barmanVersion(), append(barmanArgv("barman-cloud-check-wal-archive"), "--cloud-provider", "aws-s3", "--endpoint-url", endpoint, "s3://"+bucket+"/pg", "pg-0"), barmanEnv},
	}
	if _, err := exec.LookPath("aws"); err == nil {
		cmds = append(cmds, struct {
			name string
			argv []string
			env  []string
		}{"aws-cli script (put, get, ls, rm)", []string{"/bin/sh", awsScript}, nil})
	}
	const runs = 7
	samples := make([][]sample, len(cmds))
	for _, c := range cmds { // warm-up
		measure(c.argv, c.env)
	}
	for i := 0; i < runs; i++ { // alternating
		for j, c := range cmds {
			samples[j] = append(samples[j], measure(c.argv, c.env))
		}
	}
	for j, c := range cmds {
		res.OneTarget = append(res.OneTarget, summarize(c.name, samples[j]))
	}
	for _, s := range res.OneTarget[1:] {
		res.Ratios["cnpg-preflight / "+s.Name+" (wall)"] = round(res.OneTarget[0].WallMs / s.WallMs)
	}

	// 2. Round trips: the tool's own count, cross-checked by a counting proxy; critical path.
	proxy, count := countingProxy(endpoint, 0)
	viaProxy := filepath.Join(tmp, "proxy.yaml")
	os.WriteFile(viaProxy, []byte(clusters(bucket, proxy, 1)), 0o644)
	m, _ := runJSON(bin, "check", "-f", viaProxy, "-o", "json")
	res.RoundTrips = map[string]any{
		"toolCount":     m.Targets[0].Requests,
		"proxyCount":    count.Load(),
		"note":          "the endpoint check's HTTP sniff (http:// only) goes through the proxy too; the tool counts SDK requests",
		"criticalPath":  criticalPath(),
		"checkDuration": durations(m),
	}

	// 3. Latency: 50 ms added to every request by the proxy.
	slow, _ := countingProxy(endpoint, 50*time.Millisecond)
	viaSlow := filepath.Join(tmp, "slow.yaml")
	os.WriteFile(viaSlow, []byte(clusters(bucket, slow, 1)), 0o644)
	var lat []sample
	for i := 0; i < 5; i++ {
		lat = append(lat, measure([]string{bin, "check", "-f", viaSlow, "-o", "json"}, nil))
	}
	ls := summarize("cnpg-preflight, +50 ms per request", lat)
	cp := criticalPath()["requests"].(int)
	res.Latency = map[string]any{"wallMsMedian": ls.WallMs, "criticalPathRequests": cp, "criticalPathMs": cp * 50, "ratio": round(ls.WallMs / float64(cp*50))}

	// 4. Fleet scale with the default concurrency, and the concurrency choice at 500 targets.
	for _, n := range []int{10, 100, 500, 1000} {
		path := filepath.Join(tmp, fmt.Sprintf("fleet-%d.yaml", n))
		os.WriteFile(path, []byte(clusters(bucket, endpoint, n)), 0o644)
		res.Fleet = append(res.Fleet, fleetRun(bin, path, n, fmt.Sprintf("%d targets", n)))
	}
	fleet500 := filepath.Join(tmp, "fleet-500.yaml")
	for _, c := range []int{4, 8, 16, 32, 64} {
		var ss []sample
		for i := 0; i < 3; i++ {
			ss = append(ss, measure([]string{bin, "check", "-f", fleet500, "-o", "json", "--concurrency", fmt.Sprint(c)}, nil))
		}
		st := summarize(fmt.Sprintf("500 targets, concurrency %d", c), ss)
		st.Concurrent = c
		res.Concurrency = append(res.Concurrency, st)
	}

	// 5. Lint only: --offline on 500 Clusters.
	var lint []sample
	for i := 0; i < 7; i++ {
		lint = append(lint, measure([]string{bin, "check", "-f", fleet500, "-o", "json", "--offline"}, nil))
	}
	res.Lint = summarize("--offline, 500 Clusters", lint)

	// 5b. Start-up, and the read-only fleet scan.
	res.Startup = startup(bin, tmp)
	res.Startup.OneTargetRSS = res.OneTarget[0].RSSMiB
	ro := fleetRun(bin, filepath.Join(tmp, "fleet-1000.yaml"), 1000, "1000 targets, --read-only", "--read-only")
	res.Startup.ReadOnlyFleet = &ro

	// 6. Hostile endpoints: time to the verdict and peak RSS under endless or lying answers.
	res.Hostile = hostileStreams(bin, tmp)

	// BENCH_SKIP=serve,window keeps those sections of the last results (they take minutes: the
	// serve window, and seeding 100,000 objects).
	var last results
	if b, err := os.ReadFile(filepath.Join(out, "results.json")); err == nil {
		json.Unmarshal(b, &last)
	}
	skip := strings.Split(os.Getenv("BENCH_SKIP"), ",")

	// 7. serve: steady state with 100 targets at a 1-minute interval.
	if res.Serve = last.Serve; !slices.Contains(skip, "serve") {
		res.Serve = benchServe(bin, tmp, bucket, endpoint)
	}

	// 8. The recovery window of a source with 10,000 and 100,000 archived segments.
	if res.Window = last.Window; !slices.Contains(skip, "window") {
		res.Window = benchWindow(bin, tmp, []int{10000, 100000})
	}
	return write(out, res)
}

func write(out string, res results) error {
	os.MkdirAll(out, 0o755)
	b, _ := json.MarshalIndent(res, "", "  ")
	must(os.WriteFile(filepath.Join(out, "results.json"), append(b, '\n'), 0o644))
	md := markdown(res)
	must(os.WriteFile(filepath.Join(out, "summary.md"), []byte(md), 0o644))
	fmt.Print(md)
	return nil
}

func machine() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
			break
		}
	}
	return fmt.Sprintf("%s, %d CPUs", model, strings.Count(string(b), "processor\t:"))
}

func mc(tmp string, args ...string) {
	tools := os.Getenv("CNPG_PREFLIGHT_TOOLS")
	if tools == "" {
		tools = filepath.Join(os.Getenv("HOME"), ".cache/cnpg-preflight/tools")
	}
	cmd := exec.Command(filepath.Join(tools, "bin", "mc"), append([]string{"--quiet"}, args...)...)
	cmd.Env = append(os.Environ(), "MC_CONFIG_DIR="+filepath.Join(filepath.Dir(os.Getenv("CNPG_PREFLIGHT_SERVERS")), "mc"))
	cmd.Run()
}

// clusters writes n Clusters with distinct serverNames on one bucket.
func clusters(bucket, endpoint string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: bench}\nstringData: {id: %s, secret: %s}\n", env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"])
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg-%d, namespace: bench}
spec:
  instances: 3
  backup:
    retentionPolicy: 30d
    barmanObjectStore:
      destinationPath: s3://%s/pg
      endpointURL: %s
      s3Credentials:
        accessKeyId: {name: creds, key: id}
        secretAccessKey: {name: creds, key: secret}
      wal: {compression: gzip}
`, i, bucket, endpoint)
	}
	return b.String()
}

func measure(argv, extraEnv []string) sample { return measureTo(argv, extraEnv, io.Discard) }

// rusageBin is bench/rusage, built by run: every command is measured through it (see there why
// the bench cannot read a child's peak RSS itself).
var rusageBin string

// measureTo runs argv (with extraEnv added) and samples its wall time, CPU time and peak RSS; its
// standard output goes to stdout.
func measureTo(argv, extraEnv []string, stdout io.Writer) sample {
	out, err := os.CreateTemp("", "pf-rusage-")
	must(err)
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.Command(rusageBin, append([]string{out.Name()}, argv...)...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = stdout, io.Discard
	if err := cmd.Run(); err != nil {
		return sample{Exit: -1}
	}
	var wall, user, sys, rss int64
	var s sample
	b, _ := os.ReadFile(out.Name())
	if _, err := fmt.Sscan(string(b), &wall, &user, &sys, &rss, &s.Exit); err != nil {
		return sample{Exit: -1}
	}
	s.Wall, s.CPU, s.RSSKiB = time.Duration(wall), time.Duration(user+sys), rss
	return s
}

func median(xs []float64) float64 {
	sort.Float64s(xs)
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)/2]
}

func summarize(name string, ss []sample) stat {
	var w, c, r []float64
	st := stat{Name: name, Runs: len(ss)}
	for _, s := range ss {
		w = append(w, float64(s.Wall.Microseconds())/1000)
		c = append(c, float64(s.CPU.Microseconds())/1000)
		r = append(r, float64(s.RSSKiB)/1024)
		st.ExitCodes = append(st.ExitCodes, s.Exit)
	}
	st.WallMs, st.CPUMs, st.RSSMiB = round(median(w)), round(median(c)), round(median(r))
	return st
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// fleetRun checks the n targets of path once (with extra flags) and records, besides the sample,
// the requests the targets made and the CPU time MinIO spent meanwhile.
func fleetRun(bin, path string, n int, name string, extra ...string) stat {
	pid := 0
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(os.Getenv("CNPG_PREFLIGHT_SERVERS")), "minio.pid")); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	before, steal := cpuTicks(pid), stealTicks()
	var out bytes.Buffer
	s := measureTo(append([]string{bin, "check", "-f", path, "-o", "json"}, extra...), nil, &out)
	st := summarize(name, []sample{s})
	st.Targets = n
	st.StealMs = float64(stealTicks()-steal) * 10
	if pid > 0 {
		st.ServerCPUMs = float64(cpuTicks(pid)-before) * 10 // clock ticks of 10 ms
	}
	var m report.Matrix
	if json.Unmarshal(out.Bytes(), &m) == nil {
		for _, t := range m.Targets {
			st.Requests += t.Requests
		}
	}
	return st
}

func runJSON(bin string, args ...string) (*report.Matrix, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout = &out
	cmd.Run()
	var m report.Matrix
	return &m, json.Unmarshal(out.Bytes(), &m)
}

// countingProxy forwards to target, counting requests and adding delay to each.
func countingProxy(target string, delay time.Duration) (string, *atomic.Int64) {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	var n atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	}))
	return "http://" + ln.Addr().String(), &n
}

// criticalPath is the chain of requests that must happen one after another for one S3 target:
// the multipart upload (create, then both parts at once) runs alongside write→read→delete→head.
func criticalPath() map[string]any {
	chain := []string{"HEAD / (http:// sniff; a TLS handshake instead for https)", "HeadBucket",
		"GetBucketVersioning ∥ GetObjectLockConfiguration ∥ GetBucketLifecycleConfiguration (store-policies)",
		"PutObject", "GetObject", "PutObject (overwrite)", "GetObject (overwrite)", "DeleteObject", "HeadObject (confirm gone)",
		// ∥ CreateMultipartUpload, UploadPart (concurrent); list, backups, wal-archive, system-id alongside
		"CompleteMultipartUpload", "DeleteObject (multipart)"}
	return map[string]any{"requests": len(chain), "chain": chain}
}

func durations(m *report.Matrix) map[string]int64 {
	out := map[string]int64{}
	for _, c := range m.Targets[0].Checks {
		out[c.ID] = c.DurationMs
	}
	return out
}

func markdown(r results) string {
	var b strings.Builder
	if len(r.OneTarget) > 0 {
		b.WriteString(measurements(r))
	}
	b.WriteString(r.Startup.markdown())
	b.WriteString("\n## Hostile endpoints (--timeout 10s)\n\n| stream | time to verdict ms | peak RSS MiB | exit |\n|---|---|---|---|\n")
	for _, s := range r.Hostile {
		fmt.Fprintf(&b, "| %s | %.0f | %.1f | %v |\n", s.Name, s.WallMs, s.RSSMiB, s.ExitCodes)
	}
	b.WriteString(windowMarkdown(r.Window))
	return b.String()
}

// measurements renders the sections about normal runs.
func measurements(r results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# cnpg-preflight benchmarks\n\n%s, %s. Local MinIO on loopback. Median of %d alternating runs after a warm-up.\n\n", r.Date, r.Machine, r.OneTarget[0].Runs)
	b.WriteString("## One target, full matrix\n\n| command | wall ms | CPU ms | peak RSS MiB | exit codes |\n|---|---|---|---|---|\n")
	for _, s := range r.OneTarget {
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %v |\n", s.Name, s.WallMs, s.CPUMs, s.RSSMiB, s.ExitCodes)
	}
	for k, v := range r.Ratios {
		fmt.Fprintf(&b, "\n%s: **%.3f**", k, v)
	}
	fmt.Fprintf(&b, "\n\n## Round trips\n\nrequests per target: %v (tool) / %v (counting proxy); critical path: %v requests in a row.\n",
		r.RoundTrips["toolCount"], r.RoundTrips["proxyCount"], r.RoundTrips["criticalPath"].(map[string]any)["requests"])
	fmt.Fprintf(&b, "\nWith 50 ms added per request: wall %.0f ms vs critical path × 50 ms = %v ms (ratio %.2f).\n",
		r.Latency["wallMsMedian"], r.Latency["criticalPathMs"], r.Latency["ratio"])
	b.WriteString("\n## Fleet (default concurrency)\n\n| targets | wall ms | CPU ms | peak RSS MiB | requests | MinIO CPU ms | steal ms |\n|---|---|---|---|---|---|---|\n")
	for _, s := range r.Fleet {
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.1f | %d | %.0f | %.0f |\n", s.Targets, s.WallMs, s.CPUMs, s.RSSMiB, s.Requests, s.ServerCPUMs, s.StealMs)
	}
	b.WriteString("\n## Concurrency at 500 targets\n\n| concurrency | wall ms | peak RSS MiB |\n|---|---|---|\n")
	for _, s := range r.Concurrency {
		fmt.Fprintf(&b, "| %d | %.0f | %.1f |\n", s.Concurrent, s.WallMs, s.RSSMiB)
	}
	fmt.Fprintf(&b, "\n## Lint only\n\n`--offline` on 500 Clusters: %.1f ms wall, %.1f MiB peak RSS.\n", r.Lint.WallMs, r.Lint.RSSMiB)
	if s := r.Serve; s != nil {
		fmt.Fprintf(&b, "\n## serve, steady state\n\n%s: %d targets, `--interval %s` (read-only rounds), /metrics scraped every %s; measured from the end of round 2 over %s (%d rounds; %d in all).\n\n",
			s.Date, s.Targets, s.Interval, s.ScrapeEvery, s.Window, s.RoundsInWindow, s.Rounds)
		b.WriteString("| | value |\n|---|---|\n")
		fmt.Fprintf(&b, "| CPU per minute | %.0f ms (%.2f %% of one core) |\n", s.CPUmsPerMinute, s.CPUPercent)
		fmt.Fprintf(&b, "| RSS at the end / mean / peak | %.1f / %.1f / %.1f MiB |\n", s.RSSMiB, s.RSSMeanMiB, s.PeakRSSMiB)
		fmt.Fprintf(&b, "| Go heap in use (end) | %.1f MiB |\n", s.HeapMiB)
		fmt.Fprintf(&b, "| one round (last) | %.0f ms |\n", s.RoundMs)
		fmt.Fprintf(&b, "| first round done (start → ready) | %.0f ms |\n", s.ReadyMs)
		fmt.Fprintf(&b, "| /metrics | %d series, %d KiB, %.1f ms per scrape |\n", s.Series, s.ScrapeKiB, s.ScrapeMs)
		fmt.Fprintf(&b, "| stop after SIGTERM | %.0f ms, exit %d |\n", s.StopMs, s.Exit)
	}
	return b.String()
}
