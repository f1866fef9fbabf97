package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type serveStat struct {
	Date           string  `json:"date"`
	Targets        int     `json:"targets"`
	Interval       string  `json:"interval"`
	Window         string  `json:"window"`
	ScrapeEvery    string  `json:"scrapeEvery"`
	Rounds         int     `json:"rounds"`
	RoundsInWindow int     `json:"roundsInWindow"`
	CPUmsPerMinute float64 `json:"cpuMsPerMinute"`
	CPUPercent     float64 `json:"cpuPercentOfOneCore"`
	RSSMiB         float64 `json:"rssMiBEnd"`
	RSSMeanMiB     float64 `json:"rssMiBMean"`
	PeakRSSMiB     float64 `json:"peakRssMiB"`
	HeapMiB        float64 `json:"goHeapInuseMiB"`
	RoundMs        float64 `json:"lastRoundMs"`
	ReadyMs        float64 `json:"firstRoundMs"`
	Series         int     `json:"metricsSeries"`
	ScrapeKiB      int     `json:"metricsKiB"`
	ScrapeMs       float64 `json:"scrapeMsMedian"`
	StopMs         float64 `json:"stopMs"`
	Exit           int     `json:"exit"`
}

// benchServe runs `serve` on 100 Clusters with a 1-minute interval and measures its steady state
// from /proc: from the end of the second round to the end of the round N rounds later
// (CNPG_PREFLIGHT_BENCH_SERVE_ROUNDS, default 2: the window is N intervals, jitter aside), while
// /metrics is scraped every 15 s as Prometheus would.
func benchServe(bin, tmp, bucket, endpoint string) *serveStat {
	const n, interval, scrapeEvery = 100, time.Minute, 15 * time.Second
	rounds := 2
	if v, err := strconv.Atoi(os.Getenv("CNPG_PREFLIGHT_BENCH_SERVE_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	path := filepath.Join(tmp, "serve-100.yaml")
	must(os.WriteFile(path, []byte(clusters(bucket, endpoint, n)), 0o644))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(tmp, "serve.log")
	logf, err := os.Create(logPath)
	must(err)
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "-f", path, "--interval", interval.String(), "--listen", addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	must(cmd.Start())
	pid := cmd.Process.Pid
	st := &serveStat{Date: time.Now().UTC().Format(time.RFC3339), Targets: n, Interval: interval.String(), ScrapeEvery: scrapeEvery.String(), Exit: -1}
	get := func(p string) (int, string, time.Duration) {
		t0 := time.Now()
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			return 0, "", 0
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(t0)
	}
	done := func() int { b, _ := os.ReadFile(logPath); return strings.Count(string(b), " round done: ") }
	for time.Since(start) < 2*time.Minute && done() < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	st.ReadyMs = float64(time.Since(start).Milliseconds())
	metric := func(body, name string) float64 {
		for _, l := range strings.Split(body, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == name {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v
			}
		}
		return 0
	}
	var rss, scrapes []float64
	var body string
	nextScrape := time.Now()
	wait := func(k int) { // until k rounds are done, scraping and sampling RSS meanwhile
		for done() < k && time.Since(start) < time.Duration(k+2)*interval {
			if time.Now().After(nextScrape) {
				_, b, d := get("/metrics")
				body = b
				scrapes = append(scrapes, float64(d.Microseconds())/1000)
				nextScrape = nextScrape.Add(scrapeEvery)
			}
			rss = append(rss, rssKiB(pid, "VmRSS:")/1024)
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait(2)
	cpu0, t0 := cpuTicks(pid), time.Now()
	rss = rss[:0]
	wait(2 + rounds)
	elapsed := time.Since(t0)
	cpu := float64(cpuTicks(pid)-cpu0) * 10 // ms (CLK_TCK = 100)
	st.Window = elapsed.Round(time.Second).String()
	st.RoundsInWindow = rounds
	_, body, _ = get("/metrics")
	st.CPUmsPerMinute = round(cpu / elapsed.Minutes())
	st.CPUPercent = round(cpu / float64(elapsed.Milliseconds()) * 100)
	st.RSSMiB = round(rssKiB(pid, "VmRSS:") / 1024)
	st.PeakRSSMiB = round(rssKiB(pid, "VmHWM:") / 1024)
	var sum float64
	for _, r := range rss {
		sum += r
	}
	st.RSSMeanMiB = round(sum / float64(max(len(rss), 1)))
	st.HeapMiB = round(metric(body, "go_memstats_heap_inuse_bytes") / (1 << 20))
	st.RoundMs = round(metric(body, "cnpg_preflight_round_duration_seconds") * 1000)
	st.Rounds = int(metric(body, "cnpg_preflight_rounds_total"))
	st.ScrapeMs = round(median(scrapes))
	st.ScrapeKiB = len(body) / 1024
	for _, l := range strings.Split(body, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			st.Series++
		}
	}
	stop := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
		st.Exit = cmd.ProcessState.ExitCode()
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	st.StopMs = float64(time.Since(stop).Milliseconds())
	return st
}

// cpuTicks is the user + system CPU time of a process, in clock ticks (/proc/PID/stat).
func cpuTicks(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:]) // state is field 3; utime 14, stime 15
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			k, _ := strconv.ParseInt(f[12], 10, 64)
			return u + k
		}
	}
	return 0
}

// stealTicks is the machine's steal time so far in clock ticks of 10 ms (the eighth value of the
// cpu line of /proc/stat); 0 where it cannot be read.
func stealTicks() int64 {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	if f := strings.Fields(line); len(f) > 8 && f[0] == "cpu" {
		n, _ := strconv.ParseInt(f[8], 10, 64)
		return n
	}
	return 0
}

// rssKiB reads a memory line of /proc/PID/status (VmRSS:, VmHWM:) in KiB.
func rssKiB(pid int, key string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), key) {
			v, _ := strconv.ParseFloat(strings.Fields(sc.Text())[1], 64)
			return v
		}
	}
	return 0
}
