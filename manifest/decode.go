package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
)

// MaxFileSize bounds what one input file may hold; manifests are small.
const MaxFileSize = 8 << 20

// Group/version pairs we read.
const (
	ClusterAPIVersion     = "postgresql.cnpg.io/v1"
	ObjectStoreAPIVersion = "barmancloud.cnpg.io/v1"
)

// InputError is input that cannot be read: it names the file, the line where known and the field.
type InputError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// LivePrefix starts the "file" name of objects read from a live cluster (no line numbers then).
const LivePrefix = "live "

// Set is everything read from the inputs.
type Set struct {
	Clusters     []*Cluster
	ObjectStores []*ObjectStore
	Secrets      map[string]*Secret    // by namespace/name
	ConfigMaps   map[string]*ConfigMap // by namespace/name (those a Cluster's env reads)
	// Backups and ScheduledBackups (recovery from a Backup object; method after a migration).
	Backups          []*Backup
	ScheduledBackups []*ScheduledBackup
	// Problems are objects that could not be read from a live cluster, by "Kind namespace/name".
	Problems map[string]string
	// Ignored counts the documents of kinds cnpg-preflight does not read, by "Kind (apiVersion)".
	Ignored map[string]int
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{Secrets: map[string]*Secret{}, ConfigMaps: map[string]*ConfigMap{}, Problems: map[string]string{}, Ignored: map[string]int{}}
}

// Summary says what was read: "1 Cluster(s), 2 ObjectStore(s), 0 Secret(s)", then the kinds
// that were ignored.
func (s *Set) Summary() string {
	out := fmt.Sprintf("%d Cluster(s), %d ObjectStore(s), %d Secret(s)", len(s.Clusters), len(s.ObjectStores), len(s.Secrets))
	if len(s.ConfigMaps) > 0 {
		out += fmt.Sprintf(", %d ConfigMap(s)", len(s.ConfigMaps))
	}
	if len(s.Backups) > 0 {
		out += fmt.Sprintf(", %d Backup(s)", len(s.Backups))
	}
	if len(s.ScheduledBackups) > 0 {
		out += fmt.Sprintf(", %d ScheduledBackup(s)", len(s.ScheduledBackups))
	}
	var ignored []string
	for k, n := range s.Ignored {
		ignored = append(ignored, fmt.Sprintf("%d %s", n, k))
	}
	if len(ignored) > 0 {
		sort.Strings(ignored)
		out += "; ignored " + strings.Join(ignored, ", ")
	}
	return out
}

// readKinds are the kinds cnpg-preflight reads and the apiVersion it reads them in.
var readKinds = map[string]string{"Cluster": ClusterAPIVersion, "ObjectStore": ObjectStoreAPIVersion, "Secret": "v1", "ConfigMap": "v1"}

// Secret returns the Secret namespace/name, or nil.
func (s *Set) Secret(namespace, name string) *Secret { return s.Secrets[namespace+"/"+name] }

// Backup returns the Backup namespace/name, or nil.
func (s *Set) Backup(namespace, name string) *Backup {
	for _, b := range s.Backups {
		if b.Meta.Namespace == namespace && b.Meta.Name == name {
			return b
		}
	}
	return nil
}

// ConfigMap returns the ConfigMap namespace/name, or nil.
func (s *Set) ConfigMap(namespace, name string) *ConfigMap { return s.ConfigMaps[namespace+"/"+name] }

// ObjectStore returns the ObjectStore namespace/name, or nil.
func (s *Set) ObjectStore(namespace, name string) *ObjectStore {
	for _, o := range s.ObjectStores {
		if o.Meta.Namespace == namespace && o.Meta.Name == name {
			return o
		}
	}
	return nil
}

// Load reads every path: a file, a directory (its *.yaml, *.yml and *.json files, not recursive)
// or "-" for stdin. Objects without a namespace are put in defaultNamespace.
func Load(paths []string, stdin io.Reader, defaultNamespace string) (*Set, error) {
	set := NewSet()
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(io.LimitReader(stdin, MaxFileSize+1))
			if err != nil {
				return nil, &InputError{File: "-", Msg: "cannot read standard input: " + err.Error()}
			}
			if err := set.Add("-", data, defaultNamespace); err != nil {
				return nil, err
			}
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, &InputError{File: p, Msg: describeFSError(err)}
		}
		files := []string{p}
		if st.IsDir() {
			files, err = manifestFiles(p)
			if err != nil {
				return nil, err
			}
		}
		for _, f := range files {
			data, err := readFile(f)
			if err != nil {
				return nil, err
			}
			if err := set.Add(f, data, defaultNamespace); err != nil {
				return nil, err
			}
		}
	}
	return set, nil
}

func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &InputError{File: dir, Msg: describeFSError(err)}
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	if len(files) == 0 {
		return nil, &InputError{File: dir, Msg: "directory holds no *.yaml, *.yml or *.json file"}
	}
	sort.Strings(files)
	return files, nil
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, &InputError{File: name, Msg: describeFSError(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &InputError{File: name, Msg: describeFSError(err)}
	}
	return data, nil
}

func describeFSError(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file or directory"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Add parses one file's content (one or more YAML or JSON documents).
func (s *Set) Add(file string, data []byte, defaultNamespace string) error {
	if len(data) > MaxFileSize {
		return &InputError{File: file, Msg: fmt.Sprintf("file is larger than %d MiB; is this a manifest?", MaxFileSize>>20)}
	}
	if !isText(data) {
		return &InputError{File: file, Msg: "not a text file (NUL byte or invalid UTF-8)"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return syntaxError(file, data, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue // empty document
		}
		if depth(n.Content[0], MaxDepth) > MaxDepth {
			return &InputError{File: file, Line: n.Content[0].Line, Msg: fmt.Sprintf("document nested more than %d levels deep; is this a manifest?", MaxDepth)}
		}
		if err := s.addObject(file, n.Content[0], defaultNamespace, ""); err != nil {
			return err
		}
	}
}

func isText(data []byte) bool {
	return bytes.IndexByte(data, 0) < 0 && utf8.Valid(data)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(file string, data []byte, err error) error {
	msg := err.Error()
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && !yamlLineRE.MatchString(msg) {
		// JSON: encoding/json knows the byte offset of the error.
		var v any
		var se *json.SyntaxError
		if jerr := json.Unmarshal(data, &v); errors.As(jerr, &se) {
			line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			return &InputError{File: file, Line: line, Msg: "JSON syntax error: " + se.Error()}
		}
	}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.Contains(m[2], "tab character") {
			line = firstTabIndentLine(data, line)
		}
		return &InputError{File: file, Line: line, Msg: "syntax error: " + m[2]}
	}
	return &InputError{File: file, Msg: "syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
}

// firstTabIndentLine returns the first line from `from` on whose indentation holds a tab
// (yaml.v3 reports the line before it).
func firstTabIndentLine(data []byte, from int) int {
	for i, l := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return from
}

type header struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Meta       Meta              `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	BinaryData map[string]string `yaml:"binaryData"`
}

// Bounds on the shape of an input document: no CloudNativePG manifest comes near them.
const (
	MaxDepth     = 64 // nesting of mappings and sequences in one document
	MaxListDepth = 4  // a List inside a List inside …
)

// readHeader reads what every object has without copying the document: the header fields are
// decoded from their own small subtrees, and a List's items are returned as they are.
func readHeader(n *yaml.Node, file, pathPrefix string) (header, []*yaml.Node, error) {
	var h header
	var items []*yaml.Node
	hdr := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "items":
			if v.Kind == yaml.SequenceNode {
				items = v.Content
			}
		case "apiVersion", "kind", "metadata", "data", "stringData", "binaryData":
			hdr.Content = append(hdr.Content, k, v)
		}
	}
	_, err := decode(hdr, &h, file, pathPrefix, false)
	return h, items, err
}

// depth returns the nesting depth of n, stopping once it passes max.
func depth(n *yaml.Node, max int) int {
	if n == nil || max < 0 {
		return 0
	}
	d := 0
	for _, c := range n.Content {
		d = maxInt(d, depth(c, max-1))
		if d > max {
			break
		}
	}
	return d + 1
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func (s *Set) addObject(file string, n *yaml.Node, defaultNamespace, pathPrefix string) error {
	return s.addObjectAt(file, n, defaultNamespace, pathPrefix, 0)
}

func (s *Set) addObjectAt(file string, n *yaml.Node, defaultNamespace, pathPrefix string, lists int) error {
	if n.Kind != yaml.MappingNode {
		return &InputError{File: file, Line: n.Line, Field: strings.TrimSuffix(pathPrefix, "."), Msg: "document is not an object (a mapping with apiVersion and kind)"}
	}
	h, items, err := readHeader(n, file, pathPrefix)
	if err != nil {
		return err
	}
	origin := Origin{File: file, Line: n.Line}
	group, version := splitAPIVersion(h.APIVersion)
	switch {
	case h.Kind == "" && h.APIVersion == "":
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "kind", Msg: "missing apiVersion and kind: not a Kubernetes object"}
	case h.APIVersion == "" && readKinds[h.Kind] != "":
		// The API server refuses an object without apiVersion; dropping it silently would only
		// show up later as a missing object.
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "apiVersion", Msg: fmt.Sprintf("%s has no apiVersion (the API server refuses it too); cnpg-preflight reads %s with apiVersion %s", h.Kind, h.Kind, readKinds[h.Kind])}
	case h.Kind == "List" || strings.HasSuffix(h.Kind, "List") && len(items) > 0:
		if lists == MaxListDepth {
			return &InputError{File: file, Line: n.Line, Field: pathPrefix + "items", Msg: fmt.Sprintf("a List nested more than %d levels deep", MaxListDepth)}
		}
		for i, it := range items {
			if err := s.addObjectAt(file, it, defaultNamespace, fmt.Sprintf("%sitems[%d].", pathPrefix, i), lists+1); err != nil {
				return err
			}
		}
		return nil
	case h.Kind == "Secret" && h.APIVersion == "v1":
		return s.addSecret(file, n, h, origin, defaultNamespace, pathPrefix)
	case h.Kind == "ConfigMap" && h.APIVersion == "v1":
		return s.addConfigMap(file, n, h, origin, defaultNamespace, pathPrefix)
	case h.Kind == "Cluster" && group == "postgresql.cnpg.io":
		c := &Cluster{}
		return s.addNamed(file, n, h, version, ClusterAPIVersion, c, defaultNamespace, pathPrefix, func() (prev *Origin) {
			for _, o := range s.Clusters {
				if o.Meta.Namespace == c.Meta.Namespace && o.Meta.Name == c.Meta.Name {
					return &o.Origin
				}
			}
			s.Clusters = append(s.Clusters, c)
			return nil
		})
	case h.Kind == "Backup" && group == "postgresql.cnpg.io":
		b := &Backup{}
		return s.addNamed(file, n, h, version, ClusterAPIVersion, b, defaultNamespace, pathPrefix, func() (prev *Origin) {
			if p := s.Backup(b.Meta.Namespace, b.Meta.Name); p != nil {
				return &p.Origin
			}
			s.Backups = append(s.Backups, b)
			return nil
		})
	case h.Kind == "ScheduledBackup" && group == "postgresql.cnpg.io":
		b := &ScheduledBackup{}
		return s.addNamed(file, n, h, version, ClusterAPIVersion, b, defaultNamespace, pathPrefix, func() (prev *Origin) {
			for _, o := range s.ScheduledBackups {
				if o.Meta.Namespace == b.Meta.Namespace && o.Meta.Name == b.Meta.Name {
					return &o.Origin
				}
			}
			s.ScheduledBackups = append(s.ScheduledBackups, b)
			return nil
		})
	case h.Kind == "ObjectStore" && group == "barmancloud.cnpg.io":
		o := &ObjectStore{}
		return s.addNamed(file, n, h, version, ObjectStoreAPIVersion, o, defaultNamespace, pathPrefix, func() (prev *Origin) {
			if p := s.ObjectStore(o.Meta.Namespace, o.Meta.Name); p != nil {
				return &p.Origin
			}
			s.ObjectStores = append(s.ObjectStores, o)
			return nil
		})
	}
	kind := text.Safe(h.Kind) // other kinds are ignored, and counted for the messages
	if h.APIVersion != "" {
		kind += " (" + text.Safe(h.APIVersion) + ")"
	}
	s.Ignored[kind]++
	return nil
}

// named is a kind decoded with its field issues kept (Cluster, ObjectStore).
type named interface {
	meta() *Meta
	read(o Origin, issues []Issue)
}

func (c *Cluster) meta() *Meta                        { return &c.Meta }
func (c *Cluster) read(o Origin, issues []Issue)      { c.Origin, c.Issues = o, issues }
func (b *Backup) meta() *Meta                         { return &b.Meta }
func (b *Backup) read(o Origin, issues []Issue)       { b.Origin = o }
func (b *ScheduledBackup) meta() *Meta                { return &b.Meta }
func (b *ScheduledBackup) read(o Origin, _ []Issue)   { b.Origin = o }
func (o *ObjectStore) meta() *Meta                    { return &o.Meta }
func (o *ObjectStore) read(or Origin, issues []Issue) { o.Origin, o.Issues = or, issues }

// addNamed decodes n into obj (of apiVersion want), names and namespaces it, and stores it with
// store, which returns the origin of an object of the same namespace and name already read.
func (s *Set) addNamed(file string, n *yaml.Node, h header, version, want string, obj named, defaultNamespace, pathPrefix string, store func() *Origin) error {
	kind := h.Kind
	if version != "v1" {
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "apiVersion", Msg: fmt.Sprintf("%s has apiVersion %q; cnpg-preflight reads %s", kind, h.APIVersion, want)}
	}
	issues, err := decode(n, obj, file, pathPrefix, true)
	if err != nil {
		return err
	}
	obj.read(Origin{File: file, Line: n.Line}, issues)
	m := obj.meta()
	if m.Name == "" {
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "metadata.name", Msg: kind + " has no name"}
	}
	if m.Namespace == "" {
		m.Namespace = defaultNamespace
	}
	if prev := store(); prev != nil {
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "metadata.name", Msg: fmt.Sprintf("%s %s/%s is defined twice (first in %s)", kind, m.Namespace, m.Name, prev)}
	}
	return nil
}

func (o Origin) String() string {
	if o.File == "" {
		return "the live cluster"
	}
	if o.Line > 0 {
		return fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	return o.File
}

func splitAPIVersion(v string) (group, version string) {
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return "", v
}

func (s *Set) addSecret(file string, n *yaml.Node, h header, origin Origin, defaultNamespace, pathPrefix string) error {
	sec := &Secret{Meta: h.Meta, Data: map[string][]byte{}, Origin: origin}
	if sec.Meta.Name == "" {
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "metadata.name", Msg: "Secret has no name"}
	}
	if sec.Meta.Namespace == "" {
		sec.Meta.Namespace = defaultNamespace
	}
	for k, v := range h.Data {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			path := pathPrefix + "data." + k
			return &InputError{File: file, Line: lineOf(n, "data", k), Field: path, Msg: "value is not valid base64 (Secret data must be base64; use stringData for plain text)"}
		}
		sec.Data[k] = b
	}
	for k, v := range h.StringData {
		sec.Data[k] = []byte(v)
	}
	key := sec.Meta.Namespace + "/" + sec.Meta.Name
	if prev := s.Secrets[key]; prev != nil {
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "metadata.name", Msg: fmt.Sprintf("Secret %s is defined twice (first in %s)", key, prev.Origin)}
	}
	s.Secrets[key] = sec
	return nil
}

func (s *Set) addConfigMap(file string, n *yaml.Node, h header, origin Origin, defaultNamespace, pathPrefix string) error {
	cm := &ConfigMap{Meta: h.Meta, Data: map[string][]byte{}, Origin: origin}
	if cm.Meta.Name == "" {
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "metadata.name", Msg: "ConfigMap has no name"}
	}
	if cm.Meta.Namespace == "" {
		cm.Meta.Namespace = defaultNamespace
	}
	for k, v := range h.Data {
		cm.Data[k] = []byte(v)
	}
	for k, v := range h.BinaryData {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return &InputError{File: file, Line: lineOf(n, "binaryData", k), Field: pathPrefix + "binaryData." + k, Msg: "value is not valid base64"}
		}
		cm.Data[k] = b
	}
	key := cm.Meta.Namespace + "/" + cm.Meta.Name
	if prev := s.ConfigMaps[key]; prev != nil {
		return &InputError{File: file, Line: n.Line, Field: pathPrefix + "metadata.name", Msg: fmt.Sprintf("ConfigMap %s is defined twice (first in %s)", key, prev.Origin)}
	}
	s.ConfigMaps[key] = cm
	return nil
}

// lineOf returns the line of the value at the key path in mapping n, or n's line.
func lineOf(n *yaml.Node, keys ...string) int {
	cur := n
	for _, k := range keys {
		found := false
		for i := 0; i+1 < len(cur.Content); i += 2 {
			if cur.Content[i].Value == k {
				cur, found = cur.Content[i+1], true
				break
			}
		}
		if !found {
			break
		}
	}
	return cur.Line
}

// decode decodes n into v, matching field names exactly. With wantIssues, unknown fields inside
// object-store blocks are returned as Issues (and ignored, as the API server's pruning would);
// unknown fields elsewhere are ignored. Type errors become InputErrors.
func decode(n *yaml.Node, v any, file, pathPrefix string, wantIssues bool) ([]Issue, error) {
	c := cloneNode(n)
	var issues []Issue
	var sink *[]Issue
	if wantIssues {
		sink = &issues
	}
	if tm := prune(c, reflect.TypeOf(v), "", false, sink); tm != nil {
		return nil, tm.inputError(file, pathPrefix)
	}
	if err := c.Decode(v); err != nil {
		return nil, typeError(file, n, err, pathPrefix)
	}
	return issues, nil
}

func (tm *typeMismatch) inputError(file, pathPrefix string) error {
	return &InputError{File: file, Line: tm.line, Field: pathPrefix + tm.path, Msg: fmt.Sprintf("wrong type: expected %s, got %s", tm.want, tm.got)}
}

var lineMsgRE = regexp.MustCompile(`^line (\d+): (.*)$`)

var typeErrRE = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.*)$")

func typeError(file string, root *yaml.Node, err error, pathPrefix string) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if m := typeErrRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			got := strings.TrimPrefix(m[2], "!!")
			switch got {
			case "str":
				got = "string"
			case "seq":
				got = "list"
			case "map":
				got = "object"
			}
			msg := fmt.Sprintf("wrong type: expected %s, got %s", goTypeName(m[4]), got)
			if m[3] != "" {
				msg += fmt.Sprintf(" %q", m[3])
			}
			kind := yaml.ScalarNode
			switch m[2] {
			case "!!seq":
				kind = yaml.SequenceNode
			case "!!map":
				kind = yaml.MappingNode
			}
			return &InputError{File: file, Line: line, Field: pathPrefix + pathAtLine(root, line, kind, m[3]), Msg: msg}
		}
		if m := lineMsgRE.FindStringSubmatch(msg); m != nil { // e.g. a duplicate mapping key
			line, _ := strconv.Atoi(m[1])
			return &InputError{File: file, Line: line, Msg: "syntax error: " + m[2]}
		}
		return &InputError{File: file, Line: root.Line, Msg: msg}
	}
	return &InputError{File: file, Line: root.Line, Msg: err.Error()}
}

func goTypeName(t string) string {
	switch {
	case t == "bool":
		return "a boolean (true or false)"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "bool":
		return "a boolean (true or false)"
	case strings.HasPrefix(t, "map["):
		return "an object"
	default:
		return "an object"
	}
}

// pathAtLine finds the field path of the node on line that has the kind (and, for scalars, the
// value) a type error names.
func pathAtLine(n *yaml.Node, line int, kind yaml.Kind, value string) string {
	match := func(v *yaml.Node) bool {
		return v.Line == line && v.Kind == kind && (kind != yaml.ScalarNode || v.Value == value)
	}
	var walk func(n *yaml.Node, path string) (string, bool)
	walk = func(n *yaml.Node, path string) (string, bool) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(path, k.Value)
				if r, ok := walk(v, p); ok { // the deepest match names the field
					return r, true
				}
				if match(v) {
					return p, true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if r, ok := walk(c, p); ok {
					return r, true
				}
				if match(c) {
					return p, true
				}
			}
		}
		return "", false
	}
	p, _ := walk(n, "")
	return p
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// cloneNode deep-copies a node tree (prune edits it), sharing alias targets' copies.
func cloneNode(n *yaml.Node) *yaml.Node {
	seen := map[*yaml.Node]*yaml.Node{}
	var cp func(*yaml.Node) *yaml.Node
	cp = func(n *yaml.Node) *yaml.Node {
		if n == nil {
			return nil
		}
		if c, ok := seen[n]; ok {
			return c
		}
		c := *n
		seen[n] = &c
		if len(n.Content) > 0 {
			c.Content = make([]*yaml.Node, len(n.Content))
			for i, x := range n.Content {
				c.Content[i] = cp(x)
			}
		}
		c.Alias = cp(n.Alias)
		return &c
	}
	return cp(n)
}

var (
	strictType = reflect.TypeOf(BarmanObjectStore{})
	nodeType   = reflect.TypeOf(yaml.Node{})
)

// walker removes from a node tree every mapping key that the Go type does not declare, so decoding
// matches field names exactly (case-sensitive, as Kubernetes does). In strict subtrees
// (object-store blocks) each removed key is recorded as an Issue. It also rejects quoted scalars for
// boolean and integer fields, which the API server rejects and yaml.v3 would accept.
type walker struct {
	issues  *[]Issue
	typeErr *typeMismatch
}

type typeMismatch struct {
	path, want, got string
	line            int
}

func prune(n *yaml.Node, t reflect.Type, path string, strict bool, issues *[]Issue) *typeMismatch {
	w := &walker{issues: issues}
	w.walk(n, t, path, strict)
	return w.typeErr
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, strict bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == strictType {
		strict = true
	}
	if n.Kind == yaml.AliasNode || t == nodeType {
		return // aliases are decoded as written; raw nodes are decoded later
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64:
		quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || (n.Style&yaml.TaggedStyle != 0 && n.Tag == "!!str")
		if n.Kind == yaml.ScalarNode && quoted && w.typeErr == nil {
			want := "a boolean (true or false)"
			if t.Kind() != reflect.Bool {
				want = "an integer"
			}
			w.typeErr = &typeMismatch{path: path, want: want, got: fmt.Sprintf("string %q", n.Value), line: n.Line}
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := structFields(t)
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				kept = append(kept, k, v)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				if strict && w.issues != nil {
					*w.issues = append(*w.issues, Issue{Path: joinPath(path, k.Value), Line: k.Line, Msg: unknownFieldMsg(k.Value, fields)})
				}
				continue
			}
			w.walk(v, ft, joinPath(path, k.Value), strict)
			kept = append(kept, k, v)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), strict)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				w.walk(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), strict)
			}
		}
	}
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if name == "-" || name == "" {
			continue
		}
		f[name] = sf.Type
	}
	fieldCache.Store(t, f)
	return f
}

func unknownFieldMsg(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for name := range fields {
		if strings.EqualFold(name, key) {
			best, bestD = name, 0
			break
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(key)); d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?); it is ignored", key, best)
	}
	return fmt.Sprintf("unknown field %q; it is ignored", key)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
