// Package config loads the connector's YAML configuration strictly: a
// version field is required, unknown keys are errors, and every problem
// (unknown key, wrong type, missing or invalid value, unreadable secret,
// a file others can read or change) is reported at once with its path.
// Secrets are never inline: they come from files or environment variables
// named in the config.
//
// On Unix the files it names are checked like private keys: a secret file
// (bind, connection string, client secret, certificate and its password,
// proxy password, connector private keys, the status listener's TLS key)
// must be owned by the process's user or root and neither readable nor
// writable by group or others (chmod 600); a trust anchor (the config
// file, CA files, sender public keys) must have such an owner and not be
// writable by group or others (chmod go-w). Each offending file is a
// problem naming its mode and the command that fixes it. On Windows
// nothing is checked yet: DACL and owner checks are future work.
//
// It owns the defaults of every setting it has, in one table (Defaults):
// the components these settings reach do not default them again. Each
// section has its own validator; the queue section is checked with the
// Service Bus package's rules (servicebus.Config.Problems), the one
// queue-auth validator, and Queue.ServiceBus is the one mapping of the
// section to a Service Bus client configuration.
package config

import (
	"time"

	"github.com/adwriteback/adwriteback/ldapx"
)

// Version is the configuration format this build reads.
const Version = 1

// Config is the whole configuration. Field docs are the reference; see
// configs/reference.yaml for a commented example.
type Config struct {
	Version int       `yaml:"version"`
	Domains []*Domain `yaml:"domains"`
	Queue   Queue     `yaml:"queue"`
	Results Results   `yaml:"results"`
	Status  Status    `yaml:"status"`
	Keys    Keys      `yaml:"keys"`
	Journal Journal   `yaml:"journal"`
	Limits  Limits    `yaml:"limits"`
	Audit   Audit     `yaml:"audit"`
	HTTP    HTTP      `yaml:"http"`
	Log     Log       `yaml:"log"`
}

// Domain is one AD domain.
type Domain struct {
	// Name is the DNS name; commands route by it or by UPN suffix.
	Name        string   `yaml:"name"`
	UPNSuffixes []string `yaml:"upn_suffixes"`
	// Servers: ldaps://host[:636] or ldap://host[:389] (StartTLS), tried in order.
	Servers []string `yaml:"servers"`
	// Discover adds DCs from DNS SRV _ldap._tcp.dc._msdcs.<name>: only
	// targets that are the domain or under it, or under a DiscoverAllow
	// entry, each checked against tls.ca_file (required) and by its
	// rootDSE before the bind (ldapx.Config.Discover).
	Discover      bool          `yaml:"discover"`
	DiscoverAllow []string      `yaml:"discover_allow"`
	Bind          Bind          `yaml:"bind"`
	TLS           TLS           `yaml:"tls"`
	BaseDN        string        `yaml:"base_dn"`
	PoolSize      int           `yaml:"pool_size"`
	DialTimeout   time.Duration `yaml:"dial_timeout"`
	OpTimeout     time.Duration `yaml:"operation_timeout"`
	PolicyRefresh time.Duration `yaml:"policy_refresh"`
	// DCProbeInterval is how often each DC (listed or discovered) is
	// probed with a rootDSE read over the pool's TLS and bind, so that
	// /readyz, /status and the DC-up metric say what was seen.
	DCProbeInterval time.Duration `yaml:"dc_probe_interval"`
	Scope           Scope         `yaml:"scope"`
	OrgPolicy       OrgPolicy     `yaml:"org_policy"`
}

// Bind is how the connector authenticates to the domain's DCs.
type Bind struct {
	// Method: simple (default: dn and a password), kerberos (a keytab:
	// principal and keytab_file, no password anywhere) or negotiate
	// (Windows only: SSPI as the identity the service runs as, a gMSA, a
	// virtual account or the machine account; nothing else is set).
	// Kerberos and negotiate bind over the same verified TLS, to the SPN
	// ldap/<DC host name>: a server given as an address needs
	// tls.server_name naming the DC.
	Method       string `yaml:"method"`
	DN           string `yaml:"dn"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// Principal is the service account's Kerberos name, name@REALM
	// (svc-writeback@EXAMPLE.COM; a gMSA's name ends in $).
	Principal string `yaml:"principal"`
	// KeytabFile holds the principal's keys (a secret file: chmod 600). A
	// keytab replaced on disk (a rotation exported again) is used from
	// the next bind on, without a restart.
	KeytabFile string `yaml:"keytab_file"`
	// Realm defaults to the domain's name in capitals; KDCs (host[:port],
	// port 88 by default) to each server's host. Krb5Conf names a
	// krb5.conf to take them from instead.
	Realm    string   `yaml:"realm"`
	KDCs     []string `yaml:"kdcs"`
	Krb5Conf string   `yaml:"krb5_conf"`
	// Password is resolved from the file or environment at load time.
	Password string `yaml:"-"`
}

// The values of bind.method.
const (
	BindSimple    = string(ldapx.BindSimple)
	BindKerberos  = string(ldapx.BindKerberos)
	BindNegotiate = string(ldapx.BindNegotiate)
)

// TLS is how DC certificates are verified.
type TLS struct {
	// CAFile holds the roots DC certificates must chain to (empty: the
	// system's; required with discover).
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked in the certificates of the
	// servers listed (never of a discovered DC).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns verification off. For labs only; logged loudly.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Scope limits which accounts the connector may touch.
type Scope struct {
	OUs []string `yaml:"ous"`
	// ExcludeGroups (DNs): members, nested or by primary group, are
	// refused as out of scope. Tier0Groups (DNs) add to the built-in
	// tier-0 groups, whose members are refused as protected. Both are
	// resolved to SIDs at start; one that does not exist stops the
	// connector.
	ExcludeGroups []string `yaml:"exclude_groups"`
	Tier0Groups   []string `yaml:"tier0_groups"`
	// AllowProtected lets a stale adminCount=1 through; never a member of
	// a tier-0 group.
	AllowProtected bool `yaml:"allow_protected"`
}

// OrgPolicy adds the organisation's rules to AD's.
type OrgPolicy struct {
	MinLength       int    `yaml:"min_length"`
	BannedWordsFile string `yaml:"banned_words_file"`
	// BannedMode is how the banned list decides: strict (any term within
	// one edit anywhere refuses) or entra (as Entra Password Protection:
	// a 5-point score, names and tenant name matched).
	BannedMode string `yaml:"banned_mode"`
	// TenantName is matched like the user's names in entra mode; "" (the
	// DC agent's behaviour on premises) matches none.
	TenantName    string `yaml:"tenant_name"`
	BreachedIndex string `yaml:"breached_index"`
}

// Queue is the Service Bus source.
type Queue struct {
	Name string `yaml:"name"`
	// Auth: connection_string (default), client_secret, client_certificate,
	// managed_identity, workload_identity, default.
	Auth                    string `yaml:"auth"`
	ConnectionStringFile    string `yaml:"connection_string_file"`
	ConnectionStringEnv     string `yaml:"connection_string_env"`
	Namespace               string `yaml:"namespace"`
	TenantID                string `yaml:"tenant_id"`
	ClientID                string `yaml:"client_id"`
	ClientSecretFile        string `yaml:"client_secret_file"`
	ClientSecretEnv         string `yaml:"client_secret_env"`
	CertificateFile         string `yaml:"certificate_file"`
	CertificatePasswordFile string `yaml:"certificate_password_file"`
	ManagedIdentityClientID string `yaml:"managed_identity_client_id"`
	TokenFile               string `yaml:"token_file"`
	// AuthorityHost is the Entra ID authority (sovereign clouds, a test
	// issuer); empty: AZURE_AUTHORITY_HOST or the public cloud's.
	AuthorityHost string `yaml:"authority_host"`
	// Transport: amqp (TCP 5671, default) or websockets (443).
	Transport string `yaml:"transport"`
	// Proxy is the HTTP CONNECT proxy (websockets only); it also carries the
	// Entra ID token requests and the HTTPS result reports.
	Proxy Proxy `yaml:"proxy"`
	// CAFile holds roots trusted beside the system's, for the namespace and
	// the Entra ID token endpoint.
	CAFile string `yaml:"ca_file"`
	// CustomEndpoint (host[:port]) is dialled instead of the namespace, TLS
	// still verifying the namespace name: private endpoints and test brokers.
	CustomEndpoint string        `yaml:"custom_endpoint"`
	Prefetch       int           `yaml:"prefetch"`
	Concurrency    int           `yaml:"concurrency"`
	ShutdownGrace  time.Duration `yaml:"shutdown_grace"`

	ConnectionString    string `yaml:"-"`
	ClientSecret        string `yaml:"-"`
	CertificatePassword string `yaml:"-"`
}

// Proxy is the outbound HTTP proxy. With no url, HTTPS_PROXY and NO_PROXY
// from the environment apply.
type Proxy struct {
	URL          string   `yaml:"url"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	PasswordEnv  string   `yaml:"password_env"`
	NoProxy      []string `yaml:"no_proxy"`
	// Password is resolved from the file or environment at load time.
	Password string `yaml:"-"`
}

// Results says where results go and what they tell.
type Results struct {
	// Mode: reply_queue (default) or https.
	Mode string `yaml:"mode"`
	// ReplyQueue is the queue every result goes to in reply_queue mode
	// (required there). A message's ReplyTo is never used: it is not
	// signed, so a copy of a command could name any queue.
	ReplyQueue string        `yaml:"reply_queue"`
	TTL        time.Duration `yaml:"ttl"`
	HTTPS      HTTPSResults  `yaml:"https"`
	// AccountCodes: distinct (default) answers user_not_found,
	// ambiguous_user, out_of_scope, protected_account and
	// account_disabled each as it is; uniform answers all of them as
	// user_not_found, alike (the audit record keeps the true code).
	AccountCodes string `yaml:"account_codes"`
	// UndeliverableAfter is how long result deliveries may fail, with
	// none succeeding, before /readyz reports the connector not ready
	// (the "results" check): 1s to 24h.
	UndeliverableAfter time.Duration `yaml:"undeliverable_after"`
}

// The bounds of results.undeliverable_after.
const (
	MinUndeliverableAfter = time.Second
	MaxUndeliverableAfter = 24 * time.Hour
)

// Status is the connector's heartbeat (PROTOCOL.md §12): off without a
// queue.
type Status struct {
	// Queue is the Service Bus queue heartbeats go to (the connector
	// needs Send on it; the portal Listen, to peek). Empty: no heartbeat.
	Queue string `yaml:"queue"`
	// Interval between heartbeats: whole seconds, 1s to 1h. A reader
	// treats the connector as gone when no heartbeat is younger than 2
	// intervals.
	Interval time.Duration `yaml:"interval"`
	// Instance names this connector in its heartbeats (several may serve
	// one queue): 1 to 64 of A-Z a-z 0-9 . _ -. Empty: the first label
	// of the host name.
	Instance string `yaml:"instance"`
}

// The bounds of status.interval.
const (
	MinStatusInterval = time.Second
	MaxStatusInterval = time.Hour
)

// The values of results.account_codes.
const (
	AccountCodesDistinct = "distinct"
	AccountCodesUniform  = "uniform"
)

// HTTPSResults is the HTTPS callback.
type HTTPSResults struct {
	URL         string `yaml:"url"`
	CAFile      string `yaml:"ca_file"`
	MaxAttempts int    `yaml:"max_attempts"`
}

// Keys are the key files (see `adwriteback keygen`).
type Keys struct {
	// Connector private key files; several during a rotation. The first
	// signs results.
	Connector []string `yaml:"connector"`
	// Sender public key files trusted to sign commands.
	Senders []string `yaml:"senders"`
}

// Journal is the durable store.
type Journal struct {
	Path      string        `yaml:"path"`
	Retention time.Duration `yaml:"retention"`
}

// Limits protect users and DCs.
type Limits struct {
	PerUser     *int          `yaml:"per_user"`
	Window      time.Duration `yaml:"window"`
	Concurrency int           `yaml:"concurrency"`
	MaxAttempts int           `yaml:"max_attempts"`
}

// Audit is the audit log.
type Audit struct {
	// Path of the JSON-lines file; "-" is standard output.
	Path string `yaml:"path"`
	// UnverifiedPerMinute bounds the records of messages refused before
	// their signature was checked (anyone with send rights can make
	// them): a burst of this many, refilled over a minute; the rest are
	// counted in the next record written and in the metric.
	UnverifiedPerMinute int `yaml:"unverified_per_minute"`
}

// HTTP is the health, metrics and status listener.
type HTTP struct {
	Listen      string `yaml:"listen"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ClientCAFile, with the TLS pair, makes the listener verify client
	// certificates against these CAs (PEM): /status, /metrics and /readyz
	// then require one (not /livez). With Auth's token too, both.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientNames, when set, are the only DNS names or common names a
	// client certificate may carry (any case, whole names); others get 403.
	ClientNames []string `yaml:"client_names"`
	// Auth guards /status, /metrics and /readyz (not /livez).
	Auth HTTPAuth `yaml:"auth"`
	// AllowedHosts, when set, are the only Host header names (no port)
	// the listener answers; others get 421 (DNS rebinding).
	AllowedHosts []string   `yaml:"allowed_hosts"`
	Status       HTTPStatus `yaml:"status"`
}

// HTTPAuth is the listener's optional bearer token.
type HTTPAuth struct {
	BearerTokenFile string `yaml:"bearer_token_file"`
	BearerTokenEnv  string `yaml:"bearer_token_env"`
	// BearerToken is resolved from the file or environment at load time.
	BearerToken string `yaml:"-"`
}

// HTTPStatus shapes the /status page.
type HTTPStatus struct {
	// RedactUserDNs masks the first RDN's value of each user DN shown.
	RedactUserDNs bool `yaml:"redact_user_dns"`
}

// Log is the operational log.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
	// Path is a file the log is appended to (created 0600, reopened on
	// SIGHUP for logrotate); empty: standard error.
	Path string `yaml:"path"`
}
