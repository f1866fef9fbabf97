package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
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
}

func startup(bin string) *startupStat {
	st := &startupStat{SharedPartNote: "the 5 MiB multipart part is uploaded once per endpoint, bucket and identity; every target uploads a single small part"}
	if fi, err := os.Stat(bin); err == nil {
		st.BinaryMiB = round(float64(fi.Size()) / (1 << 20))
	}
	var inits []float64
	for i := 0; i < 9; i++ {
		cmd := exec.Command(bin, "version")
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
		st.InitPackages = n
	}
	st.InitMsMedian = round(median(inits))
	var vs []sample
	for i := 0; i < 9; i++ {
		vs = append(vs, measure([]string{bin, "version"}, nil))
	}
	v := summarize("version", vs)
	st.VersionRSSMiB, st.VersionWallMs = v.RSSMiB, v.WallMs
	return st
}

func (s *startupStat) markdown() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Start-up\n\npackage initialisation %.1f ms (median of 9, %d packages, GODEBUG=inittrace=1); `version`: %.1f ms, %.1f MiB peak RSS; binary %.1f MiB (stripped); one target, full matrix: %.1f MiB peak RSS.\n",
		s.InitMsMedian, s.InitPackages, s.VersionWallMs, s.VersionRSSMiB, s.BinaryMiB, s.OneTargetRSS)
	if s.ReadOnlyFleet != nil {
		fmt.Fprintf(&b, "Read-only fleet scan of 1,000 targets: %.0f ms, %.1f MiB peak RSS. %s.\n", s.ReadOnlyFleet.WallMs, s.ReadOnlyFleet.RSSMiB, s.SharedPartNote)
	}
	return b.String()
}
