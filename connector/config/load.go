package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Path string // e.g. domains[0].scope.ous
	Line int    // 0 when unknown
	Msg  string
}

func (p Problem) String() string {
	loc := p.Path
	if p.Line > 0 {
		loc = fmt.Sprintf("%s (line %d)", p.Path, p.Line)
	}
	if loc == "" {
		return p.Msg
	}
	return loc + ": " + p.Msg
}

// Problems is every problem found; it is the error Load returns.
type Problems []Problem

func (ps Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d configuration problem(s):", len(ps))
	for _, p := range ps {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Env looks up environment variables (os.Getenv in production).
type Env func(string) string

// Load reads, checks and completes the configuration at path. The file
// itself is a trust anchor: a mode or owner that lets anyone else change
// it is a problem listed with the others.
func Load(path string, env Env) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var probs Problems
	checkFile("", path, trustAnchor, func(p, format string, a ...any) {
		probs = append(probs, Problem{Path: p, Msg: fmt.Sprintf(format, a...)})
	})
	c, err := Parse(data, env)
	if len(probs) == 0 {
		return c, err
	}
	var more Problems
	errors.As(err, &more)
	return nil, append(probs, more...)
}

// Parse is Load for bytes.
func Parse(data []byte, env Env) (*Config, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	var probs Problems
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, Problems{{Msg: "not valid YAML: " + err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		probs = append(probs, Problem{Line: extra.Line, Msg: "more than one YAML document"})
	}
	if len(root.Content) == 0 {
		return nil, Problems{{Msg: "the configuration is empty"}}
	}
	doc := root.Content[0]
	checkKeys(doc, reflect.TypeOf(Config{}), "", &probs)
	var c Config
	if err := doc.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				probs = append(probs, Problem{Msg: e})
			}
		} else {
			probs = append(probs, Problem{Msg: err.Error()})
		}
	}
	c.defaults()
	c.validate(&probs, env)
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line && probs[i].Line > 0 })
		return nil, probs
	}
	return &c, nil
}

// movedKeys names the new place of keys earlier builds read (read-only).
var movedKeys = map[string]string{
	"queue.proxy_url": "queue.proxy.url",
}

// checkKeys walks the YAML tree beside the Go type and reports every key
// the type does not have.
func checkKeys(n *yaml.Node, t reflect.Type, path string, probs *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Duration(0)) {
			return
		}
		if n.Kind != yaml.MappingNode {
			if n.Kind != yaml.ScalarNode || n.Tag != "!!null" {
				*probs = append(*probs, Problem{Path: path, Line: n.Line, Msg: "must be a mapping"})
			}
			return
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name != "" && name != "-" {
				fields[name] = f
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				*probs = append(*probs, Problem{Path: p, Line: k.Line, Msg: "duplicate key"})
			}
			seen[k.Value] = true
			f, ok := fields[k.Value]
			if !ok {
				hint := suggest(k.Value, fields)
				if to, moved := movedKeys[p]; moved {
					hint = fmt.Sprintf(" (moved to %s)", to)
				}
				*probs = append(*probs, Problem{Path: p, Line: k.Line, Msg: "unknown key" + hint})
				continue
			}
			checkKeys(v, f.Type, p, probs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return // the decoder reports the type error
		}
		for i, item := range n.Content {
			checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names a known key close to a mistyped one.
func suggest(key string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	for name := range fields {
		if d := levenshtein.ComputeDistance(key, name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// secret resolves a secret from its file or environment variable.
func secret(path, name, file, envName string, required bool, env Env, add addFunc) string {
	switch {
	case file != "" && envName != "":
		add(path, "set %s_file or %s_env, not both", name, name)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			add(path+"."+name+"_file", "cannot read: %v", errors.Unwrap(err))
			return ""
		}
		checkFile(path+"."+name+"_file", file, secretFile, add)
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			add(path+"."+name+"_file", "the file is empty")
		}
		return s
	case envName != "":
		s := env(envName)
		if s == "" {
			add(path+"."+name+"_env", "environment variable %s is empty or unset", envName)
		}
		return s
	case required:
		add(path, "%s_file or %s_env is required (secrets are never inline)", name, name)
	}
	return ""
}

func fileMustExist(path, file string, add addFunc) {
	if file == "" {
		return
	}
	if _, err := os.Stat(file); err != nil {
		add(path, "%s: %v", file, errors.Unwrap(err))
	}
}

// trusted checks a file that must exist and that holds a secret or a
// trust anchor: its owner and mode too.
func trusted(path, file string, kind fileKind, add addFunc) {
	fileMustExist(path, file, add)
	checkFile(path, file, kind, add)
}
