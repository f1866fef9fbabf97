package integration

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestMain points the GCS client at the emulator (the Go client honours STORAGE_EMULATOR_HOST).
func TestMain(m *testing.M) {
	if path := os.Getenv("CNPG_PREFLIGHT_SERVERS"); path != "" {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if k, v, ok := strings.Cut(sc.Text(), "="); ok && k == "GCS_EMULATOR_HOST" {
					os.Setenv("STORAGE_EMULATOR_HOST", v)
				}
			}
			f.Close()
		}
	}
	os.Exit(m.Run())
}
