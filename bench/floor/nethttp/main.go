// Command nethttp is the bench's start-up baseline: a Go program linking only net/http and
// crypto/tls, which exits.
package main

import (
	_ "crypto/tls"
	_ "net/http"
)

func main() {}
