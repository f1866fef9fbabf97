// Command rusage runs a command and writes its own resource usage — wall time, user and system
// CPU time, peak RSS — to a file: `rusage OUT COMMAND [ARG...]`, standard streams passed through.
//
// The bench measures through it because a child's ru_maxrss is wrong when a big process starts
// it: Go starts children with vfork (CLONE_VM), and Linux folds the peak RSS of the address
// space an exec replaces into the new program's ru_maxrss, so a child of the bench reported the
// bench's own peak whenever that was higher (a `version` started by a bench holding 100 MiB showed
// 100 MiB). This helper is small: what it folds in (~2-3 MiB) stays below anything measured.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: rusage OUT COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code = -1
	}
	var cpuUser, cpuSys time.Duration
	var rss int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			cpuUser, cpuSys, rss = time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), ru.Maxrss
		}
	}
	line := fmt.Sprintf("%d %d %d %d %d\n", wall.Nanoseconds(), cpuUser.Nanoseconds(), cpuSys.Nanoseconds(), rss, code)
	if err := os.WriteFile(os.Args[1], []byte(line), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		os.Exit(2)
	}
}
