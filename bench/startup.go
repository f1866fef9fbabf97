package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// startupStat is the cost of starting the binary at all: package initialisation (summed from
// GODEBUG=inittrace=1), peak RSS of `version`, and the binary's size.
type startupStat struct {
	InitMsMedian   float64 `json:"initMsMedian"`
	InitPackages   int     `json:"initPackages"`
	VersionRSSMiB  float64 `json:"versionPeakRssMiBMedian"`
	VersionWallMs  float64 `json:"versionWallMsMedian"`
	BinaryMiB      float64 `json:"binaryMiB"`
	ReadOnlyFleet  *stat   `json:"readOnlyFleet1000,omitempty"`
	OneTargetRSS   float64 `json:"oneTargetFullMatrixPeakRssMiB"`
	SharedPartNote string  `json:"note"`
	// Floors: the same measurements of programs that link only part of what cnpg-preflight
	// links (bench/floor/...), built the same way: what no change to our own code can go below.
	Floors []floorStat `json:"floors,omitempty"`
}

// floorStat is the start-up of one bench/floor program.
type floorStat struct {
	Name         string  `json:"name"`
	InitMsMedian float64 `json:"initMsMedian"`
	InitPackages int     `json:"initPackages"`
	RSSMiB       float64 `json:"peakRssMiBMedian"`
	BinaryMiB    float64 `json:"binaryMiB"`
}

// floors builds and measures the bench/floor programs with the flags of `make build`.
func floors(tmp string) []floorStat {
	var out []floorStat
	for _, f := range []struct{ dir, name string }{
		{"nethttp", "net/http + crypto/tls only"},
		{"gcs", "the GCS client only (cloud.google.com/go/storage)"},
	} {
		bin := filepath.Join(tmp, "floor-"+f.dir)
		cmd := exec.Command("go", "build", "-tags", "disable_grpc_modules", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./bench/floor/"+f.dir)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: floor %s: %v: %s\n", f.dir, err, b)
			continue
		}
		fs := floorStat{Name: f.name}
		fs.InitMsMedian, fs.InitPackages = initTrace(bin)
		var ss []sample
		for i := 0; i < 9; i++ {
			ss = append(ss, measure([]string{bin}, nil))
		}
		fs.RSSMiB = summarize(f.dir, ss).RSSMiB
		if fi, err := os.Stat(bin); err == nil {
			fs.BinaryMiB = round(float64(fi.Size()) / (1 << 20))
		}
		out = append(out, fs)
	}
	return out
}

func startup(bin, tmp string) *startupStat {
	st := &startupStat{SharedPartNote: "the 5 MiB multipart part is uploaded once per endpoint, bucket and identity; every target uploads a single small part; the store's policies and the destination path's listing are read once per store"}
	if fi, err := os.Stat(bin); err == nil {
		st.BinaryMiB = round(float64(fi.Size()) / (1 << 20))
	}
	st.InitMsMedian, st.InitPackages = initTrace(bin, "version")
	var vs []sample
	for i := 0; i < 9; i++ {
		vs = append(vs, measure([]string{bin, "version"}, nil))
	}
	v := summarize("version", vs)
	st.VersionRSSMiB, st.VersionWallMs = v.RSSMiB, v.WallMs
	st.Floors = floors(tmp)
	return st
}

// initTrace runs argv 9 times with GODEBUG=inittrace=1 and returns the median of the summed
// package initialisation times, and the number of packages that have initialisation work.
func initTrace(argv ...string) (ms float64, packages int) {
	var inits []float64
	for i := 0; i < 9; i++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		cmd.Run()
		total, n := 0.0, 0
		for _, l := range strings.Split(errb.String(), "\n") {
			f := strings.Fields(l)
			if len(f) >= 5 && f[0] == "init" {
				if ms, err := strconv.ParseFloat(f[4], 64); err == nil {
					total += ms
					n++
				}
			}
		}
		inits = append(inits, total)
		packages = n
	}
	return round(median(inits)), packages
}

func (s *startupStat) markdown() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Start-up\n\npackage initialisation %.1f ms (median of 9, %d packages, GODEBUG=inittrace=1); `version`: %.1f ms, %.1f MiB peak RSS; binary %.1f MiB (stripped); one target, full matrix: %.1f MiB peak RSS.\n",
		s.InitMsMedian, s.InitPackages, s.VersionWallMs, s.VersionRSSMiB, s.BinaryMiB, s.OneTargetRSS)
	if s.ReadOnlyFleet != nil {
		fmt.Fprintf(&b, "Read-only fleet scan of 1,000 targets: %.0f ms, %.0f ms CPU, %.1f MiB peak RSS, %d requests, MinIO %.0f ms CPU, steal %.0f ms.\n\nFleet runs: %s.\n", s.ReadOnlyFleet.WallMs, s.ReadOnlyFleet.CPUMs, s.ReadOnlyFleet.RSSMiB, s.ReadOnlyFleet.Requests, s.ReadOnlyFleet.ServerCPUMs, s.ReadOnlyFleet.StealMs, s.SharedPartNote)
	}
	if len(s.Floors) > 0 {
		b.WriteString("\nFloors (programs linking only part of what cnpg-preflight links, built the same way):\n\n| program | package init ms | packages | peak RSS MiB | binary MiB |\n|---|---|---|---|---|\n")
		for _, f := range s.Floors {
			fmt.Fprintf(&b, "| %s | %.1f | %d | %.1f | %.1f |\n", f.Name, f.InitMsMedian, f.InitPackages, f.RSSMiB, f.BinaryMiB)
		}
	}
	return b.String()
}
