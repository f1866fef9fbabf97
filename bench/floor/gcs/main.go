// Command gcs is a start-up floor for the bench: a program that only links the Google Cloud
// Storage client (cloud.google.com/go/storage, as providers/gcs does) and exits. Whatever its
// package initialisation and peak RSS are, cnpg-preflight cannot go below them.
package main

import (
	_ "cloud.google.com/go/storage"
	_ "google.golang.org/api/option"
)

func main() {}
