package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// TestMain picks the server mode (containers or processes) and starts the containers when asked.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	path := os.Getenv("CNPG_PREFLIGHT_SERVERS")
	if path == "" {
		return m.Run() // integration tests skip (or fail under make test)
	}
	env := map[string]string{}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				env[k] = v
			}
		}
		f.Close()
	}
	mode := testenv.ServerMode()
	fmt.Printf("integration: server mode %s (MinIO and Azurite as %s)\n", mode, mode)
	if mode == testenv.ModeContainers {
		c, overrides, err := testenv.StartContainers(context.Background(), env)
		defer c.Stop() // also when tests fail
		if err != nil {
			fmt.Println("integration: containers:", err)
			return 1
		}
		p, err := testenv.RewriteEnv(path, overrides)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		defer os.Remove(p)
		os.Setenv("CNPG_PREFLIGHT_SERVERS", p)
		os.Setenv("CNPG_PREFLIGHT_MODE_ACTIVE", mode)
	}
	return m.Run()
}
