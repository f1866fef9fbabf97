package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: any input either decodes or yields one InputError; never a panic.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"../testdata/bad", "../testdata/clusters", "../testdata/demo"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.y*ml"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewSet()
		err := s.Add("fuzz.yaml", data, "default")
		var ie *InputError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if ie != nil && ie.Msg == "" {
			t.Fatal("empty message")
		}
		for _, c := range s.Clusters {
			if c.Meta.Name == "" || c.Meta.Namespace == "" {
				t.Fatalf("cluster without name or namespace: %+v", c.Meta)
			}
		}
	})
}
