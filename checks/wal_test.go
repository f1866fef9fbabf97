package checks

import "testing"

func TestWALName(t *testing.T) {
	cases := map[string]string{ // key -> WAL name ("" = not a WAL for barman)
		"p/s/wals/0000000100000000/000000010000000000000001":                 "000000010000000000000001",
		"p/s/wals/0000000100000000/000000010000000000000001.gz":              "000000010000000000000001",
		"p/s/wals/0000000100000000/000000010000000000000001.zst":             "000000010000000000000001",
		"p/s/wals/0000000100000000/000000010000000000000001.lz4":             "000000010000000000000001",
		"p/s/wals/0000000100000000/000000010000000000000001.partial":         "000000010000000000000001.partial",
		"p/s/wals/0000000100000000/000000010000000000000001.partial.gz":      "000000010000000000000001.partial",
		"p/s/wals/0000000100000000/000000010000000000000002.00000028.backup": "000000010000000000000002.00000028.backup",
		"p/s/wals/00000002.history":                                          "00000002.history",
		"p/s/wals/00000002.history.bz2":                                      "00000002.history",
		"p/s/wals/0000000100000000/0000000a000000000000000b":                 "0000000a000000000000000b",
		"p/s/wals/0000000100000000/000000010000000000000001.gz.gz":           "",
		"p/s/wals/0000000100000000/000000010000000000000001.zip":             "",
		"p/s/wals/README":                    "",
		"p/s/wals/00000001000000000000001":   "",
		"p/s/wals/0000000100000000000000011": "",
		"p/s/wals/cnpg-preflight-probe-x":    "",
		"p/s/wals/0000000G0000000000000001":  "",
	}
	for key, want := range cases {
		got, ok := WALName(key)
		if ok != (want != "") || got != want {
			t.Errorf("WALName(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	if tl := Timeline("0000000A0000000000000001"); tl != 10 {
		t.Errorf("timeline %d", tl)
	}
}
