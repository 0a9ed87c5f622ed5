package stack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

// ConfigSpec is a connector configuration with one domain: the settings the
// integration stacks choose. A zero field is left out of the YAML, so the
// connector's default applies (connector/config).
type ConfigSpec struct {
	// Domain is domains[0].name.
	Domain string
	// Servers is domains[0].servers.
	Servers []string
	// BindDN and BindPasswordFile are domains[0].bind.dn and .password_file.
	BindDN, BindPasswordFile string
	// BindMethod is domains[0].bind.method (simple, kerberos, negotiate;
	// "": left out, the connector's default, simple); Kerberos its
	// settings for kerberos (see UseKerberos).
	BindMethod string
	Kerberos   KerberosSpec
	// CAFile and ServerName are domains[0].tls.ca_file and .server_name.
	CAFile, ServerName string
	// OUs is domains[0].scope.ous; ExcludeGroups and Tier0Groups are
	// .scope.exclude_groups and .scope.tier0_groups.
	OUs                        []string
	ExcludeGroups, Tier0Groups []string
	// DialTimeout and OperationTimeout are domains[0].dial_timeout and
	// .operation_timeout.
	DialTimeout, OperationTimeout time.Duration
	// PoolSize is domains[0].pool_size (0: the connector's default).
	PoolSize int
	// MinLength is domains[0].org_policy.min_length.
	MinLength int
	// BannedWordsFile, BannedMode and TenantName are domains[0].org_policy's
	// banned_words_file, banned_mode and tenant_name ("": the default).
	BannedWordsFile, BannedMode, TenantName string

	// Queue, ConnectionStringFile, Concurrency and ShutdownGrace are
	// queue.name, .connection_string_file, .concurrency and .shutdown_grace.
	// ReplyQueue is results.reply_queue.
	Queue, ConnectionStringFile, ReplyQueue string
	Concurrency                             int
	ShutdownGrace                           time.Duration
	// Transport is queue.transport (amqp or websockets); Proxy is
	// queue.proxy (e.g. from Env.Proxy); QueueCAFile, CustomEndpoint and
	// AuthorityHost are queue.ca_file, .custom_endpoint and
	// .authority_host (the network edge: the TLS emulator, the token
	// issuer).
	Transport                                  string
	Proxy                                      ProxySpec
	QueueCAFile, CustomEndpoint, AuthorityHost string
	// QueueAuth is queue.auth and its Entra settings (empty: the
	// connection string in ConnectionStringFile).
	QueueAuth QueueAuthSpec

	// ConnectorKeys and SenderKeys are keys.connector and keys.senders.
	ConnectorKeys, SenderKeys []string
	// Journal is journal.path; Audit is audit.path.
	Journal, Audit string

	// PerUser and MaxAttempts are limits.per_user and limits.max_attempts
	// (0: left out, so per_user cannot be set to 0 here).
	PerUser, MaxAttempts int
	// AccountCodes is results.account_codes (distinct or uniform);
	// UndeliverableAfter is results.undeliverable_after (0: left out).
	AccountCodes       string
	UndeliverableAfter time.Duration
	// StatusQueue, StatusInterval and StatusInstance are status.queue,
	// .interval and .instance (the heartbeat; off without a queue).
	StatusQueue, StatusInstance string
	StatusInterval              time.Duration
	// HTTPListen is http.listen.
	HTTPListen string
	// HTTPTLSCertFile, HTTPTLSKeyFile, HTTPClientCAFile and HTTPClientNames
	// are http.tls_cert_file, .tls_key_file, .client_ca_file and
	// .client_names (with a certificate, Connector.URL is https://; give
	// the stack a client that can read the pages with ReadPagesWith).
	HTTPTLSCertFile, HTTPTLSKeyFile, HTTPClientCAFile string
	HTTPClientNames                                   []string
	// LogLevel, LogFormat and LogPath are log.level, log.format and
	// log.path (empty: standard error, which Connector.Logs reads).
	LogLevel, LogFormat, LogPath string
}

// KerberosSpec is domains[0].bind's Kerberos settings: principal,
// keytab_file, realm, kdcs, krb5_conf.
type KerberosSpec struct {
	Principal, KeytabFile, Realm string
	KDCs                         []string
	Krb5Conf                     string
}

// UseKerberos makes the spec bind to info's DC with Kerberos as
// principal, with the keys in keytab, the DC's KDC, and no DN nor
// password. The servers stay the DC's address; tls.server_name names its
// host, which its certificate covers and its SPN (ldap/<host>) names.
func (c *ConfigSpec) UseKerberos(info *testdc.Info, principal, keytab string) {
	c.BindMethod = "kerberos"
	c.BindDN, c.BindPasswordFile = "", ""
	c.Kerberos = KerberosSpec{Principal: principal, KeytabFile: keytab, KDCs: []string{info.KDC}}
	c.ServerName = info.Host
}

// ProxySpec is queue.proxy: url, username, password_file, no_proxy.
type ProxySpec struct {
	URL, Username, PasswordFile string
	NoProxy                     []string
}

// QueueAuthSpec is queue.auth with the Entra ID settings it needs:
// namespace, tenant_id, client_id, client_secret_file, certificate_file,
// token_file.
type QueueAuthSpec struct {
	Auth, Namespace, TenantID, ClientID          string
	ClientSecretFile, CertificateFile, TokenFile string
}

// The files a stack directory holds, as DCConfig names them (the key
// files as `adwriteback keygen` names them).
const (
	ConnectorKeyFile     = "connector.key.json"
	ConnectorPubFile     = "connector.pub.json"
	SenderKeyFile        = "sender.key.json"
	SenderPubFile        = "sender.pub.json"
	BindPasswordFile     = "bind.pass"
	ConnectionStringFile = "sb.conn"
	JournalFile          = "journal.db"
	AuditFile            = "audit.jsonl"
)

// DCConfig is the spec of a connector for the test DC, its service account
// limited to the in-scope OU, with its files in dir under the names above
// (see WriteKeys and WriteSecrets). Queue and the optional settings are left
// to the caller.
func DCConfig(info *testdc.Info, dir string) ConfigSpec {
	p := func(name string) string { return filepath.Join(dir, name) }
	return ConfigSpec{
		Domain:               "adw.test",
		Servers:              []string{info.LDAPSURL},
		BindDN:               info.ServiceDN,
		BindPasswordFile:     p(BindPasswordFile),
		CAFile:               info.CAFile,
		OUs:                  []string{info.InScopeOU},
		ConnectionStringFile: p(ConnectionStringFile),
		ConnectorKeys:        []string{p(ConnectorKeyFile)},
		SenderKeys:           []string{p(SenderPubFile)},
		Journal:              p(JournalFile),
		Audit:                p(AuditFile),
	}
}

// The YAML document: connector/config's keys, each left out when empty.
type (
	document struct {
		Version int          `yaml:"version"`
		Domains []domain     `yaml:"domains"`
		Queue   queueSection `yaml:"queue"`
		Results results      `yaml:"results,omitempty"`
		Status  status       `yaml:"status,omitempty"`
		Keys    keysSection  `yaml:"keys"`
		Journal pathSection  `yaml:"journal"`
		Audit   pathSection  `yaml:"audit"`
		Limits  limits       `yaml:"limits,omitempty"`
		HTTP    httpSection  `yaml:"http,omitempty"`
		Log     logSection   `yaml:"log,omitempty"`
	}
	domain struct {
		Name        string        `yaml:"name"`
		Servers     []string      `yaml:"servers"`
		Bind        bind          `yaml:"bind"`
		TLS         tlsSection    `yaml:"tls,omitempty"`
		Scope       scope         `yaml:"scope"`
		DialTimeout time.Duration `yaml:"dial_timeout,omitempty"`
		PoolSize    int           `yaml:"pool_size,omitempty"`
		OpTimeout   time.Duration `yaml:"operation_timeout,omitempty"`
		OrgPolicy   orgPolicy     `yaml:"org_policy,omitempty"`
	}
	bind struct {
		Method       string   `yaml:"method,omitempty"`
		DN           string   `yaml:"dn,omitempty"`
		PasswordFile string   `yaml:"password_file,omitempty"`
		Principal    string   `yaml:"principal,omitempty"`
		KeytabFile   string   `yaml:"keytab_file,omitempty"`
		Realm        string   `yaml:"realm,omitempty"`
		KDCs         []string `yaml:"kdcs,omitempty"`
		Krb5Conf     string   `yaml:"krb5_conf,omitempty"`
	}
	tlsSection struct {
		CAFile     string `yaml:"ca_file,omitempty"`
		ServerName string `yaml:"server_name,omitempty"`
	}
	scope struct {
		OUs           []string `yaml:"ous"`
		ExcludeGroups []string `yaml:"exclude_groups,omitempty"`
		Tier0Groups   []string `yaml:"tier0_groups,omitempty"`
	}
	orgPolicy struct {
		MinLength       int    `yaml:"min_length,omitempty"`
		BannedWordsFile string `yaml:"banned_words_file,omitempty"`
		BannedMode      string `yaml:"banned_mode,omitempty"`
		TenantName      string `yaml:"tenant_name,omitempty"`
	}
	queueSection struct {
		Name                 string        `yaml:"name"`
		ConnectionStringFile string        `yaml:"connection_string_file,omitempty"`
		Auth                 string        `yaml:"auth,omitempty"`
		Namespace            string        `yaml:"namespace,omitempty"`
		TenantID             string        `yaml:"tenant_id,omitempty"`
		ClientID             string        `yaml:"client_id,omitempty"`
		ClientSecretFile     string        `yaml:"client_secret_file,omitempty"`
		CertificateFile      string        `yaml:"certificate_file,omitempty"`
		TokenFile            string        `yaml:"token_file,omitempty"`
		Transport            string        `yaml:"transport,omitempty"`
		Proxy                *proxySection `yaml:"proxy,omitempty"`
		CAFile               string        `yaml:"ca_file,omitempty"`
		CustomEndpoint       string        `yaml:"custom_endpoint,omitempty"`
		AuthorityHost        string        `yaml:"authority_host,omitempty"`
		Concurrency          int           `yaml:"concurrency,omitempty"`
		ShutdownGrace        time.Duration `yaml:"shutdown_grace,omitempty"`
	}
	proxySection struct {
		URL          string   `yaml:"url"`
		Username     string   `yaml:"username,omitempty"`
		PasswordFile string   `yaml:"password_file,omitempty"`
		NoProxy      []string `yaml:"no_proxy,omitempty"`
	}
	results struct {
		ReplyQueue   string `yaml:"reply_queue,omitempty"`
		AccountCodes string `yaml:"account_codes,omitempty"`
		// UndeliverableAfter is results.undeliverable_after.
		UndeliverableAfter time.Duration `yaml:"undeliverable_after,omitempty"`
	}
	status struct {
		Queue    string        `yaml:"queue,omitempty"`
		Interval time.Duration `yaml:"interval,omitempty"`
		Instance string        `yaml:"instance,omitempty"`
	}
	keysSection struct {
		Connector []string `yaml:"connector"`
		Senders   []string `yaml:"senders"`
	}
	pathSection struct {
		Path string `yaml:"path"`
	}
	limits struct {
		PerUser     int `yaml:"per_user,omitempty"`
		MaxAttempts int `yaml:"max_attempts,omitempty"`
	}
	httpSection struct {
		Listen       string   `yaml:"listen,omitempty"`
		TLSCertFile  string   `yaml:"tls_cert_file,omitempty"`
		TLSKeyFile   string   `yaml:"tls_key_file,omitempty"`
		ClientCAFile string   `yaml:"client_ca_file,omitempty"`
		ClientNames  []string `yaml:"client_names,omitempty"`
	}
	logSection struct {
		Level  string `yaml:"level,omitempty"`
		Format string `yaml:"format,omitempty"`
		Path   string `yaml:"path,omitempty"`
	}
)

// YAML renders the spec as a version 1 configuration file.
func (c ConfigSpec) YAML() ([]byte, error) {
	doc := document{
		Version: 1,
		Domains: []domain{{
			Name:        c.Domain,
			Servers:     c.Servers,
			Bind:        c.bind(),
			TLS:         tlsSection{CAFile: c.CAFile, ServerName: c.ServerName},
			Scope:       scope{OUs: c.OUs, ExcludeGroups: c.ExcludeGroups, Tier0Groups: c.Tier0Groups},
			DialTimeout: c.DialTimeout, PoolSize: c.PoolSize,
			OpTimeout: c.OperationTimeout,
			OrgPolicy: orgPolicy{MinLength: c.MinLength, BannedWordsFile: c.BannedWordsFile,
				BannedMode: c.BannedMode, TenantName: c.TenantName},
		}},
		Queue:   c.queueSection(),
		Results: results{ReplyQueue: c.ReplyQueue, AccountCodes: c.AccountCodes, UndeliverableAfter: c.UndeliverableAfter},
		Status:  status{Queue: c.StatusQueue, Interval: c.StatusInterval, Instance: c.StatusInstance},
		Keys:    keysSection{Connector: c.ConnectorKeys, Senders: c.SenderKeys},
		Journal: pathSection{Path: c.Journal},
		Audit:   pathSection{Path: c.Audit},
		Limits:  limits{PerUser: c.PerUser, MaxAttempts: c.MaxAttempts},
		HTTP: httpSection{Listen: c.HTTPListen, TLSCertFile: c.HTTPTLSCertFile, TLSKeyFile: c.HTTPTLSKeyFile,
			ClientCAFile: c.HTTPClientCAFile, ClientNames: c.HTTPClientNames},
		Log: logSection{Level: c.LogLevel, Format: c.LogFormat, Path: c.LogPath},
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("stack: render config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("stack: render config: %w", err)
	}
	return b.Bytes(), nil
}

// WriteFile writes the rendered spec to path (mode 0600).
func (c ConfigSpec) WriteFile(path string) error {
	b, err := c.YAML()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("stack: write config: %w", err)
	}
	return nil
}

// bind renders domains[0].bind.
func (c ConfigSpec) bind() bind {
	k := c.Kerberos
	return bind{Method: c.BindMethod, DN: c.BindDN, PasswordFile: c.BindPasswordFile,
		Principal: k.Principal, KeytabFile: k.KeytabFile, Realm: k.Realm, KDCs: k.KDCs, Krb5Conf: k.Krb5Conf}
}

// queueSection renders the queue settings, the network edge's among them.
func (c ConfigSpec) queueSection() queueSection {
	a := c.QueueAuth
	q := queueSection{Name: c.Queue, ConnectionStringFile: c.ConnectionStringFile,
		Auth: a.Auth, Namespace: a.Namespace, TenantID: a.TenantID, ClientID: a.ClientID,
		ClientSecretFile: a.ClientSecretFile, CertificateFile: a.CertificateFile, TokenFile: a.TokenFile,
		Transport: c.Transport, CAFile: c.QueueCAFile, CustomEndpoint: c.CustomEndpoint, AuthorityHost: c.AuthorityHost,
		Concurrency: c.Concurrency, ShutdownGrace: c.ShutdownGrace}
	if a.Auth != "" && a.Auth != "connection_string" {
		q.ConnectionStringFile = ""
	}
	if p := c.Proxy; p.URL != "" {
		q.Proxy = &proxySection{URL: p.URL, Username: p.Username, PasswordFile: p.PasswordFile, NoProxy: p.NoProxy}
	}
	return q
}
