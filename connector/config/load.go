package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
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

// Load reads, checks and completes the configuration at path.
func Load(path string, env Env) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, env)
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
				*probs = append(*probs, Problem{Path: p, Line: k.Line, Msg: "unknown key" + suggest(k.Value, fields)})
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

func (c *Config) defaults() {
	for _, d := range c.Domains {
		if d == nil {
			continue
		}
		if d.PoolSize == 0 {
			d.PoolSize = 4
		}
		if d.DialTimeout == 0 {
			d.DialTimeout = 5 * time.Second
		}
		if d.OpTimeout == 0 {
			d.OpTimeout = 30 * time.Second
		}
		if d.PolicyRefresh == 0 {
			d.PolicyRefresh = 5 * time.Minute
		}
	}
	q := &c.Queue
	if q.Auth == "" {
		q.Auth = "connection_string"
	}
	if q.Transport == "" {
		q.Transport = "amqp"
	}
	if q.Prefetch == 0 {
		q.Prefetch = 8
	}
	if q.Concurrency == 0 {
		q.Concurrency = 4
	}
	if q.ShutdownGrace == 0 {
		q.ShutdownGrace = 20 * time.Second
	}
	if c.Results.Mode == "" {
		c.Results.Mode = "reply_queue"
	}
	if c.Results.TTL == 0 {
		c.Results.TTL = 10 * time.Minute
	}
	if c.Journal.Retention == 0 {
		c.Journal.Retention = 7 * 24 * time.Hour
	}
	if c.Limits.PerUser == nil {
		five := 5
		c.Limits.PerUser = &five
	}
	if c.Limits.Window == 0 {
		c.Limits.Window = 24 * time.Hour
	}
	if c.Limits.Concurrency == 0 {
		c.Limits.Concurrency = 4
	}
	if c.Limits.MaxAttempts == 0 {
		c.Limits.MaxAttempts = 5
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
}

func (c *Config) validate(probs *Problems, env Env) {
	add := func(path, format string, a ...any) {
		*probs = append(*probs, Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Version != Version {
		if c.Version == 0 {
			add("version", "required (this build reads version %d)", Version)
		} else {
			add("version", "%d is not supported (this build reads version %d)", c.Version, Version)
		}
	}
	if len(c.Domains) == 0 {
		add("domains", "at least one domain is required")
	}
	names := map[string]bool{}
	for i, d := range c.Domains {
		p := fmt.Sprintf("domains[%d]", i)
		if d == nil {
			add(p, "empty")
			continue
		}
		if d.Name == "" {
			add(p+".name", "required (the domain's DNS name)")
		} else if names[strings.ToLower(d.Name)] {
			add(p+".name", "%q is configured twice", d.Name)
		}
		names[strings.ToLower(d.Name)] = true
		if len(d.Servers) == 0 && !d.Discover {
			add(p+".servers", "list at least one ldaps:// server, or set discover: true")
		}
		for j, s := range d.Servers {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "ldaps" && u.Scheme != "ldap") || u.Host == "" {
				add(fmt.Sprintf("%s.servers[%d]", p, j), "%q must be ldaps://host[:port] or ldap://host[:port] (StartTLS)", s)
			}
		}
		if d.Bind.DN == "" {
			add(p+".bind.dn", "required (the service account's DN or UPN)")
		}
		d.Bind.Password = secret(p+".bind", "password", d.Bind.PasswordFile, d.Bind.PasswordEnv, true, env, add)
		fileMustExist(p+".tls.ca_file", d.TLS.CAFile, add)
		if len(d.Scope.OUs) == 0 {
			add(p+".scope.ous", "list the OUs the connector may write (least privilege: no default)")
		}
		for j, ou := range d.Scope.OUs {
			if !strings.Contains(ou, "=") {
				add(fmt.Sprintf("%s.scope.ous[%d]", p, j), "%q is not a DN", ou)
			}
		}
		if d.PoolSize < 0 || d.PoolSize > 64 {
			add(p+".pool_size", "must be between 1 and 64")
		}
		if d.OrgPolicy.MinLength < 0 || d.OrgPolicy.MinLength > 256 {
			add(p+".org_policy.min_length", "must be between 0 and 256")
		}
		fileMustExist(p+".org_policy.banned_words_file", d.OrgPolicy.BannedWordsFile, add)
		fileMustExist(p+".org_policy.breached_index", d.OrgPolicy.BreachedIndex, add)
	}

	q := &c.Queue
	if q.Name == "" {
		add("queue.name", "required")
	}
	switch q.Auth {
	case "connection_string":
		q.ConnectionString = secret("queue", "connection_string", q.ConnectionStringFile, q.ConnectionStringEnv, true, env, add)
	case "client_secret":
		q.ClientSecret = secret("queue", "client_secret", q.ClientSecretFile, q.ClientSecretEnv, true, env, add)
		requireAll(add, "queue", map[string]string{"namespace": q.Namespace, "tenant_id": q.TenantID, "client_id": q.ClientID})
	case "client_certificate":
		requireAll(add, "queue", map[string]string{"namespace": q.Namespace, "tenant_id": q.TenantID, "client_id": q.ClientID, "certificate_file": q.CertificateFile})
		fileMustExist("queue.certificate_file", q.CertificateFile, add)
		q.CertificatePassword = secret("queue", "certificate_password", q.CertificatePasswordFile, "", false, env, add)
	case "managed_identity", "workload_identity", "default":
		requireAll(add, "queue", map[string]string{"namespace": q.Namespace})
	default:
		add("queue.auth", "%q: use connection_string, client_secret, client_certificate, managed_identity, workload_identity or default", q.Auth)
	}
	if q.Transport != "amqp" && q.Transport != "websockets" {
		add("queue.transport", "%q: use amqp or websockets", q.Transport)
	}
	if q.Prefetch < 1 || q.Prefetch > 1000 {
		add("queue.prefetch", "must be between 1 and 1000")
	}
	if q.Concurrency < 1 || q.Concurrency > 256 {
		add("queue.concurrency", "must be between 1 and 256")
	}

	switch c.Results.Mode {
	case "reply_queue":
	case "https":
		u, err := url.Parse(c.Results.HTTPS.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			add("results.https.url", "an https:// URL is required in https mode")
		}
		fileMustExist("results.https.ca_file", c.Results.HTTPS.CAFile, add)
	default:
		add("results.mode", "%q: use reply_queue or https", c.Results.Mode)
	}

	if len(c.Keys.Connector) == 0 {
		add("keys.connector", "at least one connector private key file (adwriteback keygen)")
	}
	if len(c.Keys.Senders) == 0 {
		add("keys.senders", "at least one sender public key file")
	}
	for i, f := range c.Keys.Connector {
		fileMustExist(fmt.Sprintf("keys.connector[%d]", i), f, add)
	}
	for i, f := range c.Keys.Senders {
		fileMustExist(fmt.Sprintf("keys.senders[%d]", i), f, add)
	}
	if c.Journal.Path == "" {
		add("journal.path", "required (the durable journal file)")
	}
	if *c.Limits.PerUser < 0 {
		add("limits.per_user", "must not be negative (0 disables the limit)")
	}
	if c.Limits.Concurrency < 1 || c.Limits.Concurrency > 64 {
		add("limits.concurrency", "must be between 1 and 64")
	}
	if c.Limits.MaxAttempts < 1 {
		add("limits.max_attempts", "must be at least 1")
	}
	if c.Audit.Path == "" {
		add("audit.path", "required (a file, or - for standard output)")
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		add("http", "tls_cert_file and tls_key_file go together")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		add("log.format", "%q: use json or text", c.Log.Format)
	}
}

// secret resolves a secret from its file or environment variable.
func secret(path, name, file, envName string, required bool, env Env, add func(string, string, ...any)) string {
	switch {
	case file != "" && envName != "":
		add(path, "set %s_file or %s_env, not both", name, name)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			add(path+"."+name+"_file", "cannot read: %v", errors.Unwrap(err))
			return ""
		}
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

func fileMustExist(path, file string, add func(string, string, ...any)) {
	if file == "" {
		return
	}
	if _, err := os.Stat(file); err != nil {
		add(path, "%s: %v", file, errors.Unwrap(err))
	}
}

func requireAll(add func(string, string, ...any), path string, fields map[string]string) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fields[k] == "" {
			add(path+"."+k, "required for this auth kind")
		}
	}
}
