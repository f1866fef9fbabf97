package providertest

import (
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// The in-memory store honours the same contract as the real ones.
func TestMemStoreContract(t *testing.T) {
	Run(t, func(t *testing.T, missing bool) providers.Store {
		s := NewMemStore(nil)
		s.PageSize, s.Missing = 100, missing
		return s
	}, Options{PageKeys: 1010})
}
