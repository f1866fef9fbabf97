// Command cnpg-preflight checks CloudNativePG object-store configurations against the real endpoint.
package main

import (
	"os"

	"github.com/cnpg-preflight/cnpg-preflight/cli"
)

func main() {
	os.Exit(cli.Main(cli.NewFactory(cli.System()), os.Args[1:]))
}
