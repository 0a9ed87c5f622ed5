package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/adwriteback/adwriteback/ldapx"
	"github.com/adwriteback/adwriteback/relay/proxy"
	"github.com/adwriteback/adwriteback/relay/servicebus"
)

// addFunc records one problem at a path.
type addFunc func(path, format string, a ...any)

// validate checks every section, each with its own validator, and resolves
// the secrets; every problem is added to probs.
func (c *Config) validate(probs *Problems, env Env) {
	add := func(path, format string, a ...any) {
		*probs = append(*probs, Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	c.validateVersion(add)
	c.validateDomains(add, env)
	c.Queue.validate(add, env)
	c.Results.validate(add)
	c.Status.validate(add)
	c.Keys.validate(add)
	if c.Journal.Path == "" {
		add("journal.path", "required (the durable journal file)")
	}
	c.Limits.validate(add)
	if c.Audit.Path == "" {
		add("audit.path", "required (a file, or - for standard output)")
	}
	if n := c.Audit.UnverifiedPerMinute; n < 1 || n > 600 {
		add("audit.unverified_per_minute", "must be between 1 and 600")
	}
	c.HTTP.validate(add, env)
	c.Log.validate(add)
}

// validate checks the listener's TLS pair, client certificates and host
// names and resolves its bearer token.
func (h *HTTP) validate(add addFunc, env Env) {
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		add("http", "tls_cert_file and tls_key_file go together")
	}
	checkFile("http.tls_key_file", h.TLSKeyFile, secretFile, add)
	h.validateClientCerts(add)
	h.Auth.BearerToken = secret("http.auth", "bearer_token", h.Auth.BearerTokenFile, h.Auth.BearerTokenEnv, false, env, add)
	for i, host := range h.AllowedHosts {
		p := fmt.Sprintf("http.allowed_hosts[%d]", i)
		switch {
		case strings.TrimSpace(host) == "":
			add(p, "empty")
		case net.ParseIP(host) == nil && strings.ContainsAny(host, ":/ []"):
			add(p, "%q: a host name or IP address, without port, brackets or scheme (any port is accepted)", host)
		}
	}
}

// validateClientCerts checks the client CA (TLS needed, a readable PEM
// certificate that only its owner may change) and the names.
func (h *HTTP) validateClientCerts(add addFunc) {
	if h.ClientCAFile != "" {
		if h.TLSCertFile == "" || h.TLSKeyFile == "" {
			add("http.client_ca_file", "needs tls_cert_file and tls_key_file: client certificates are only asked for over TLS")
		}
		trusted("http.client_ca_file", h.ClientCAFile, trustAnchor, add)
		if b, err := os.ReadFile(h.ClientCAFile); err == nil && !x509.NewCertPool().AppendCertsFromPEM(b) {
			add("http.client_ca_file", "%s holds no PEM certificate (the CA certificates clients' certificates chain to)", h.ClientCAFile)
		}
	}
	if len(h.ClientNames) > 0 && h.ClientCAFile == "" {
		add("http.client_names", "needs client_ca_file: names are checked on verified client certificates")
	}
	for i, n := range h.ClientNames {
		if strings.TrimSpace(n) == "" {
			add(fmt.Sprintf("http.client_names[%d]", i), "empty")
		}
	}
}

func (c *Config) validateVersion(add addFunc) {
	switch c.Version {
	case Version:
	case 0:
		add("version", "required (this build reads version %d)", Version)
	default:
		add("version", "%d is not supported (this build reads version %d)", c.Version, Version)
	}
}

func (c *Config) validateDomains(add addFunc, env Env) {
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
		d.validate(p, add, env)
	}
}

// validate checks one domain, at path p, and resolves its bind password.
func (d *Domain) validate(p string, add addFunc, env Env) {
	if len(d.Servers) == 0 && !d.Discover {
		add(p+".servers", "list at least one ldaps:// server, or set discover: true")
	}
	for j, s := range d.Servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "ldaps" && u.Scheme != "ldap") || u.Host == "" {
			add(fmt.Sprintf("%s.servers[%d]", p, j), "%q must be ldaps://host[:port] or ldap://host[:port] (StartTLS)", s)
		}
	}
	d.Bind.validate(p+".bind", d, add, env)
	trusted(p+".tls.ca_file", d.TLS.CAFile, trustAnchor, add)
	d.validateDiscovery(p, add)
	if len(d.Scope.OUs) == 0 {
		add(p+".scope.ous", "list the OUs the connector may write (least privilege: no default)")
	}
	for j, ou := range d.Scope.OUs {
		if !strings.Contains(ou, "=") {
			add(fmt.Sprintf("%s.scope.ous[%d]", p, j), "%q is not a DN", ou)
		}
	}
	groupDNs(p+".scope.exclude_groups", d.Scope.ExcludeGroups, add)
	groupDNs(p+".scope.tier0_groups", d.Scope.Tier0Groups, add)
	if d.PoolSize < 0 || d.PoolSize > 64 {
		add(p+".pool_size", "must be between 1 and 64")
	}
	if d.DCProbeInterval < time.Second {
		add(p+".dc_probe_interval", "must be at least 1s")
	}
	if d.OrgPolicy.MinLength < 0 || d.OrgPolicy.MinLength > 256 {
		add(p+".org_policy.min_length", "must be between 0 and 256")
	}
	fileMustExist(p+".org_policy.banned_words_file", d.OrgPolicy.BannedWordsFile, add)
	if m := d.OrgPolicy.BannedMode; m != "strict" && m != "entra" {
		add(p+".org_policy.banned_mode", "%q: want strict or entra", m)
	}
	fileMustExist(p+".org_policy.breached_index", d.OrgPolicy.BreachedIndex, add)
}

// groupDNs checks that each group at path is a DN. Whether it names a
// group is for the directory to say: the connector resolves each to its
// SID at start.
func groupDNs(path string, dns []string, add addFunc) {
	for j, dn := range dns {
		if d, err := ldap.ParseDN(dn); err != nil || len(d.RDNs) == 0 {
			add(fmt.Sprintf("%s[%d]", path, j), "%q is not a DN", dn)
		}
	}
}

// validateDiscovery: a DC found in DNS is trusted only through the
// domain's own CA (never the system roots, never unverified), and only
// under the domain or an allowed name.
func (d *Domain) validateDiscovery(p string, add addFunc) {
	if !d.Discover {
		if len(d.DiscoverAllow) > 0 {
			add(p+".discover_allow", "applies only with discover: true")
		}
		return
	}
	if d.TLS.CAFile == "" {
		add(p+".tls.ca_file", "required with discover: a DC found in DNS must have a certificate from the domain's CA (the system roots are never trusted for it)")
	}
	if d.TLS.InsecureSkipVerify {
		add(p+".tls.insecure_skip_verify", "not allowed with discover: a DC found in DNS must prove its name")
	}
	if d.Name != "" && !ldapx.IsDNSName(d.Name) {
		add(p+".name", "%q is not a DNS name (discover looks up _ldap._tcp.dc._msdcs.<name>)", d.Name)
	}
	for j, a := range d.DiscoverAllow {
		if !ldapx.IsDNSName(a) {
			add(fmt.Sprintf("%s.discover_allow[%d]", p, j), "%q is not a DNS name (an IP address never is)", a)
		}
	}
}

// validate resolves the secrets the auth kind uses, then checks the queue
// section with the Service Bus package's rules (servicebus.Config.Problems,
// the one queue-auth validator), naming each problem by its key here.
func (q *Queue) validate(add addFunc, env Env) {
	if q.Name == "" {
		add("queue.name", "required")
	}
	secrets := map[string][2]string{
		"connection_string": {q.ConnectionStringFile, q.ConnectionStringEnv},
		"client_secret":     {q.ClientSecretFile, q.ClientSecretEnv},
	}
	switch servicebus.AuthKind(q.Auth) {
	case servicebus.AuthConnectionString:
		q.ConnectionString = secret("queue", "connection_string", q.ConnectionStringFile, q.ConnectionStringEnv, false, env, add)
	case servicebus.AuthClientSecret:
		q.ClientSecret = secret("queue", "client_secret", q.ClientSecretFile, q.ClientSecretEnv, false, env, add)
	case servicebus.AuthClientCertificate:
		trusted("queue.certificate_file", q.CertificateFile, secretFile, add)
		q.CertificatePassword = secret("queue", "certificate_password", q.CertificatePasswordFile, "", false, env, add)
	}
	// token_file is not checked: Kubernetes projects it (0644 by default,
	// or readable by the pod's fsGroup) and replaces it within the hour
	// it is valid for.
	if q.Proxy.Username != "" || q.Proxy.PasswordFile != "" || q.Proxy.PasswordEnv != "" {
		q.Proxy.Password = secret("queue.proxy", "password", q.Proxy.PasswordFile, q.Proxy.PasswordEnv, q.Proxy.Username != "", env, add)
	}
	trusted("queue.ca_file", q.CAFile, trustAnchor, add)
	for _, p := range q.ServiceBus().Problems() {
		src, isSecret := secrets[p.Field]
		switch {
		case p.Missing && isSecret && src != [2]string{}:
			// named but unreadable or empty: secret has said so
		case p.Field == "proxy.username" && q.Proxy.Username != "":
			// the password is missing or unreadable: secret has said so
		case p.Missing && isSecret:
			add("queue", "%s_file or %s_env is required (secrets are never inline)", p.Field, p.Field)
		case p.Missing:
			add("queue."+p.Field, "required for this auth kind")
		default:
			add("queue."+p.Field, "%s", p.Msg)
		}
	}
	if q.Prefetch < 1 || q.Prefetch > 1000 {
		add("queue.prefetch", "must be between 1 and 1000")
	}
	if q.Concurrency < 1 || q.Concurrency > 256 {
		add("queue.concurrency", "must be between 1 and 256")
	}
	if q.ShutdownGrace < 0 {
		add("queue.shutdown_grace", "must not be negative")
	}
}

// ServiceBus is the Service Bus client configuration of the queue section
// (secrets as resolved by Load); callers add their retry options.
func (q *Queue) ServiceBus() servicebus.Config {
	return servicebus.Config{
		Auth: servicebus.AuthKind(q.Auth), ConnectionString: q.ConnectionString,
		Namespace: q.Namespace, TenantID: q.TenantID, ClientID: q.ClientID,
		ClientSecret: q.ClientSecret, CertificateFile: q.CertificateFile,
		CertificatePassword: q.CertificatePassword, ManagedIdentityClientID: q.ManagedIdentityClientID,
		TokenFile: q.TokenFile, AuthorityHost: q.AuthorityHost, Transport: servicebus.TransportKind(q.Transport),
		Proxy: q.Proxy.Config(), CAFile: q.CAFile, CustomEndpoint: q.CustomEndpoint,
	}
}

// Config is the proxy configuration of the section (password as resolved by
// Load): the one proxy for the queue, the Entra ID token requests and the
// HTTPS result reports.
func (p *Proxy) Config() proxy.Config {
	return proxy.Config{URL: p.URL, Username: p.Username, Password: p.Password, NoProxy: p.NoProxy}
}

func (r *Results) validate(add addFunc) {
	switch r.Mode {
	case "reply_queue":
		switch {
		case r.ReplyQueue == "":
			add("results.reply_queue", "required in reply_queue mode: every result goes to this queue (a message's ReplyTo is never used)")
		case !validQueueName(r.ReplyQueue):
			add("results.reply_queue", "%q is not a Service Bus queue name (letters, digits, . - _ /, at most 260)", r.ReplyQueue)
		}
	case "https":
		u, err := url.Parse(r.HTTPS.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			add("results.https.url", "an https:// URL is required in https mode")
		}
		trusted("results.https.ca_file", r.HTTPS.CAFile, trustAnchor, add)
	default:
		add("results.mode", "%q: use reply_queue or https", r.Mode)
	}
	if r.AccountCodes != AccountCodesDistinct && r.AccountCodes != AccountCodesUniform {
		add("results.account_codes", "%q: use %s or %s", r.AccountCodes, AccountCodesDistinct, AccountCodesUniform)
	}
	if r.UndeliverableAfter < MinUndeliverableAfter || r.UndeliverableAfter > MaxUndeliverableAfter {
		add("results.undeliverable_after", "must be from %s to %s", MinUndeliverableAfter, MaxUndeliverableAfter)
	}
}

func (s *Status) validate(add addFunc) {
	if s.Queue != "" && !validQueueName(s.Queue) {
		add("status.queue", "%q is not a Service Bus queue name (letters, digits, . - _ /, at most 260)", s.Queue)
	}
	if s.Interval < MinStatusInterval || s.Interval > MaxStatusInterval || s.Interval%time.Second != 0 {
		add("status.interval", "must be whole seconds from %s to %s", MinStatusInterval, MaxStatusInterval)
	}
	if s.Instance != "" && !validInstance(s.Instance) {
		add("status.instance", "1 to 64 of A-Z a-z 0-9 . _ -")
	}
}

// validInstance: 1 to 64 of A-Z a-z 0-9 . _ - (a key id's alphabet, as
// the heartbeat's instance member).
func validInstance(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validQueueName reports whether s can name a Service Bus queue: 1 to 260
// letters, digits, periods, hyphens, underscores and slashes, starting
// and ending with a letter or digit.
func validQueueName(s string) bool {
	if s == "" || len(s) > 260 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '.' && c != '-' && c != '_' && c != '/' {
			return false
		}
	}
	return alnum(s[0]) && alnum(s[len(s)-1])
}

func (k *Keys) validate(add addFunc) {
	if len(k.Connector) == 0 {
		add("keys.connector", "at least one connector private key file (adwriteback keygen)")
	}
	if len(k.Senders) == 0 {
		add("keys.senders", "at least one sender public key file")
	}
	for i, f := range k.Connector {
		trusted(fmt.Sprintf("keys.connector[%d]", i), f, secretFile, add)
	}
	for i, f := range k.Senders {
		trusted(fmt.Sprintf("keys.senders[%d]", i), f, trustAnchor, add)
	}
}

func (l *Limits) validate(add addFunc) {
	if *l.PerUser < 0 {
		add("limits.per_user", "must not be negative (0 disables the limit)")
	}
	if l.Concurrency < 1 || l.Concurrency > 64 {
		add("limits.concurrency", "must be between 1 and 64")
	}
	if l.MaxAttempts < 1 {
		add("limits.max_attempts", "must be at least 1")
	}
}

func (l *Log) validate(add addFunc) {
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q: use debug, info, warn or error", l.Level)
	}
	if l.Format != "json" && l.Format != "text" {
		add("log.format", "%q: use json or text", l.Format)
	}
	if l.Path == "" {
		return
	}
	if fi, err := os.Stat(l.Path); err == nil && fi.IsDir() {
		add("log.path", "%s is a folder: name a file in it", l.Path)
		return
	}
	if fi, err := os.Stat(filepath.Dir(l.Path)); err != nil || !fi.IsDir() {
		add("log.path", "%s: the folder %s does not exist", l.Path, filepath.Dir(l.Path))
	}
}
