package ldapx

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/jonboulle/clockwork"
)

// kerberosBinder binds with GSSAPI (RFC 4752) over the connection's TLS,
// with a service ticket for ldap/<DC host name>. It logs in with the
// keytab once and reuses the TGT for every bind (a bind happens once per
// pooled connection) until 5/6 of its lifetime has passed, then logs in
// again: with a keytab that is the renewal, and it never lets a ticket
// expire under a bind. Before each bind it looks at the keytab file
// (its size and modification time; its hash when they changed) and,
// when it holds other keys, loads it and logs in again: a key rotated
// and exported again is picked up without a restart.
//
// The KDC exchanges are its own (over Config.Dialer, under the bind's
// context), built from gokrb5's messages: gokrb5's client flattens the
// KDC's KRB_ERROR into text, and a failure here must be classified by its
// code (see classifyKerberos). The pre-authentication timestamp is taken
// from Config.Clock (the app's one clock).
type kerberosBinder struct {
	file string
	log  *slog.Logger

	mu sync.Mutex
	krbClient
	stamp fileStamp
	tgt   *tgt
}

// krbClient is one principal's KDC exchanges with its keytab (kdc.go):
// the bind's and the doctor's (KerberosProbe).
type krbClient struct {
	name   types.PrincipalName
	realm  string
	krb    *krbconfig.Config
	kdcs   []string
	dialer ContextDialer
	clock  clockwork.Clock
	kt     *keytab.Keytab
}

// fileStamp is what tells a keytab file changed: size and modification
// time cheaply, the hash of its bytes for sure.
type fileStamp struct {
	size int64
	mod  time.Time
	sum  [32]byte
}

// tgt is the ticket-granting ticket of the last login.
type tgt struct {
	ticket         messages.Ticket
	key            types.EncryptionKey
	start, renewAt time.Time
	end            time.Time
	kvno           int   // the account's key version the KDC used
	etype          int32 // the encryption type of the KDC's reply (the account's key)
	kdcTime        time.Time
}

func newKerberosBinder(c *Config) (*kerberosBinder, error) {
	krb, err := krb5Config(c.Kerberos.Krb5Conf)
	if err != nil {
		return nil, err
	}
	name, realm := SplitPrincipal(c.Kerberos.Principal, c.realm())
	krb.LibDefaults.DefaultRealm = realm
	kdcs, err := kdcsOf(c, krb, realm)
	if err != nil {
		return nil, err
	}
	b := &kerberosBinder{file: c.Kerberos.KeytabFile, log: c.Logger,
		krbClient: krbClient{name: name, realm: realm, krb: krb, kdcs: kdcs, dialer: c.Dialer, clock: c.Clock}}
	return b, nil
}

// SplitPrincipal splits a principal, "name" or "name@REALM", into its
// name and realm (def when it names none), as the bind and the doctor
// read the configured principal.
func SplitPrincipal(p, def string) (types.PrincipalName, string) {
	name, realm, ok := strings.Cut(p, "@")
	if !ok || realm == "" {
		realm = def
	}
	return types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, name), realm
}

// krb5Config is gokrb5's configuration (encryption types, lifetimes,
// allowed skew): the krb5.conf's when one is named, else the defaults.
func krb5Config(file string) (*krbconfig.Config, error) {
	if file == "" {
		return krbconfig.New(), nil
	}
	krb, err := krbconfig.Load(file)
	if err != nil {
		return nil, fmt.Errorf("krb5.conf %s: %w", file, err)
	}
	return krb, nil
}

// kdcsOf are realm's KDCs as host:port: Kerberos.KDCs, else the
// krb5.conf's, else each server's host on 88.
func kdcsOf(c *Config, krb *krbconfig.Config, realm string) ([]string, error) {
	kdcs := c.Kerberos.KDCs
	if len(kdcs) == 0 && c.Kerberos.Krb5Conf != "" {
		n, m, err := krb.GetKDCs(realm, true)
		if err != nil {
			return nil, fmt.Errorf("krb5.conf %s names no KDC of %s: %w", c.Kerberos.Krb5Conf, realm, err)
		}
		for i := 1; i <= n; i++ {
			kdcs = append(kdcs, m[i])
		}
	}
	if len(kdcs) == 0 {
		kdcs = DefaultKDCs(c.Servers)
	}
	out := make([]string, 0, len(kdcs))
	for _, s := range kdcs {
		a, err := kdcAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// KDCs are the KDCs the Kerberos bind asks, host:port, in order:
// Kerberos.KDCs, else the krb5.conf's for the principal's realm, else
// DefaultKDCs(Servers). An error says why there are none to ask.
func (c *Config) KDCs() ([]string, error) {
	krb, err := krb5Config(c.Kerberos.Krb5Conf)
	if err != nil {
		return nil, err
	}
	_, realm := SplitPrincipal(c.Kerberos.Principal, c.realm())
	return kdcsOf(c, krb, realm)
}

// bind runs the SASL GSSAPI bind with a ticket for ldap/host.
func (b *kerberosBinder) bind(ctx context.Context, l *ldap.Conn, host string) error {
	spn := "ldap/" + host
	sc, err := b.securityContext(ctx, spn)
	if err != nil {
		return err
	}
	if err := l.GSSAPIBind(sc, spn, ""); err != nil {
		var le *ldap.Error
		if errors.As(err, &le) {
			return err // the DC's LDAP refusal: decoded as any bind's
		}
		return classifyKerberos("AP", err, b.facts(spn))
	}
	return nil
}

// securityContext returns the GSSAPI initiator for one bind to spn, with
// a fresh service ticket (from the kept TGT, logging in when needed).
func (b *kerberosBinder) securityContext(ctx context.Context, spn string) (*krbSecContext, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.reloadKeytab(); err != nil {
		return nil, err
	}
	t, err := b.currentTGT(ctx)
	if err != nil {
		return nil, err
	}
	tkt, key, err := b.serviceTicket(ctx, t, spn)
	var ke *KerberosError
	if errors.As(err, &ke) && ke.Code == errorcode.KRB_AP_ERR_TKT_EXPIRED {
		b.tgt = nil // the KDC says the TGT is over (a clock jump): log in at the next bind
	}
	if err != nil {
		return nil, err
	}
	creds := client.NewWithKeytab(b.name.PrincipalNameString(), b.realm, b.kt, b.krb)
	return &krbSecContext{creds: creds, ticket: tkt, key: key}, nil
}

// reloadKeytab (re)loads the keytab when the file is new or changed, and
// then drops the TGT: the next bind logs in with the new keys.
func (b *kerberosBinder) reloadKeytab() error {
	st, err := os.Stat(b.file)
	if err != nil {
		return b.keytabError(err)
	}
	if b.kt != nil && st.Size() == b.stamp.size && st.ModTime().Equal(b.stamp.mod) {
		return nil
	}
	raw, err := os.ReadFile(b.file)
	if err != nil {
		return b.keytabError(err)
	}
	stamp := fileStamp{size: st.Size(), mod: st.ModTime(), sum: sha256.Sum256(raw)}
	if b.kt != nil && stamp.sum == b.stamp.sum {
		b.stamp = stamp // touched, not changed
		return nil
	}
	kt := keytab.New()
	if err := kt.Unmarshal(raw); err != nil {
		return b.keytabError(err)
	}
	versions := keyVersions(kt, b.name, b.realm)
	if len(versions) == 0 {
		return b.keytabError(fmt.Errorf("it holds no key of %s@%s (it has %s)", b.name.PrincipalNameString(), b.realm, strings.Join(KeytabPrincipals(kt), ", ")))
	}
	if b.kt != nil {
		b.log.Info("keytab reloaded", "file", b.file, "principal", b.name.PrincipalNameString()+"@"+b.realm,
			"key_versions", versions, "previous_key_versions", keyVersions(b.kt, b.name, b.realm))
	}
	b.kt, b.stamp, b.tgt = kt, stamp, nil
	return nil
}

func (b *kerberosBinder) keytabError(err error) error {
	return &KerberosError{Reason: KerberosKeytab, Stage: "keytab", Err: err,
		Fix: fmt.Sprintf("the keytab %s cannot be used (%v): export it again for %s@%s", b.file, err, b.name.PrincipalNameString(), b.realm)}
}

// currentTGT returns the kept TGT, or logs in when there is none or it
// is due for renewal.
func (b *kerberosBinder) currentTGT(ctx context.Context) (*tgt, error) {
	now := b.clock.Now()
	if b.tgt != nil && now.Before(b.tgt.renewAt) {
		return b.tgt, nil
	}
	t, err := b.login(ctx)
	if err != nil {
		return nil, err
	}
	b.log.Debug("kerberos login", "principal", b.name.PrincipalNameString()+"@"+b.realm, "kvno", t.kvno,
		"ticket_end", t.end, "renew_at", t.renewAt)
	b.tgt = t
	return t, nil
}

// facts is what the classifier puts in its fix lines.
func (b *krbClient) facts(spn string) krbFacts {
	f := krbFacts{principal: b.name.PrincipalNameString() + "@" + b.realm, spn: spn, kdcs: b.kdcs, now: b.clock.Now()}
	if b.kt != nil {
		if v := keyVersions(b.kt, b.name, b.realm); len(v) > 0 {
			f.keyKVNO = v[len(v)-1]
		}
	}
	return f
}

// KeytabKey is a key a keytab holds, as a diagnosis names it: its
// version and encryption type (never the key itself).
type KeytabKey struct {
	KVNO  int
	EType int32
}

// ETypeName names the key's encryption type ("aes256-cts-hmac-sha1-96").
func (k KeytabKey) ETypeName() string { return etypeName(k.EType) }

// KeytabKeys lists the keys kt holds for principal (name@REALM, or name
// in realm), in the keytab's order: the keys the bind would use.
func KeytabKeys(kt *keytab.Keytab, principal, realm string) []KeytabKey {
	name, r := SplitPrincipal(principal, realm)
	return keytabKeys(kt, name, r)
}

// keytabKeys lists the keytab's entries of name@realm (both compared
// without case, as the KDC does).
func keytabKeys(kt *keytab.Keytab, name types.PrincipalName, realm string) []KeytabKey {
	var out []KeytabKey
	for _, e := range kt.Entries {
		if strings.EqualFold(e.Principal.Realm, realm) && strings.EqualFold(strings.Join(e.Principal.Components, "/"), name.PrincipalNameString()) {
			out = append(out, KeytabKey{KVNO: int(e.KVNO), EType: e.Key.KeyType})
		}
	}
	return out
}

// keyVersions are the key versions the keytab holds for the principal,
// ascending.
func keyVersions(kt *keytab.Keytab, name types.PrincipalName, realm string) []int {
	var out []int
	for _, k := range keytabKeys(kt, name, realm) {
		if !slices.Contains(out, k.KVNO) {
			out = append(out, k.KVNO)
		}
	}
	slices.Sort(out)
	return out
}

// KeytabPrincipals names every principal in kt once (name@REALM).
func KeytabPrincipals(kt *keytab.Keytab) []string {
	var out []string
	for _, e := range kt.Entries {
		if p := e.Principal.String(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// keytabEtypes names the encryption types the keytab holds for the
// principal.
func keytabEtypes(kt *keytab.Keytab, name types.PrincipalName, realm string) []string {
	var out []string
	for _, k := range keytabKeys(kt, name, realm) {
		if n := k.ETypeName(); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// etypeNames are the encryption types' usual names (RFC 3961, 3962,
// 4757, 8009): gokrb5's etypeID.ETypesByName has several for a type.
var etypeNames = map[int32]string{
	etypeID.DES_CBC_CRC: "des-cbc-crc", etypeID.DES_CBC_MD5: "des-cbc-md5", etypeID.DES3_CBC_SHA1_KD: "des3-cbc-sha1",
	etypeID.AES128_CTS_HMAC_SHA1_96: "aes128-cts-hmac-sha1-96", etypeID.AES256_CTS_HMAC_SHA1_96: "aes256-cts-hmac-sha1-96",
	etypeID.AES128_CTS_HMAC_SHA256_128: "aes128-cts-hmac-sha256-128", etypeID.AES256_CTS_HMAC_SHA384_192: "aes256-cts-hmac-sha384-192",
	etypeID.RC4_HMAC: "rc4-hmac", etypeID.RC4_HMAC_EXP: "rc4-hmac-exp",
}

func etypeName(id int32) string {
	if n, ok := etypeNames[id]; ok {
		return n
	}
	return fmt.Sprintf("etype %d", id)
}

// CheckKeytab reports whether file is a keytab holding keys of principal
// (name@REALM, or name in realm): the problem says what it holds instead.
func CheckKeytab(file, principal, realm string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("keytab: %w", err)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(raw); err != nil {
		return fmt.Errorf("keytab %s is not a keytab: %w", file, err)
	}
	name, r := SplitPrincipal(principal, realm)
	if len(keyVersions(kt, name, r)) == 0 {
		held := KeytabPrincipals(kt)
		if len(held) == 0 {
			return fmt.Errorf("keytab %s is empty: export the keys of %s@%s into it", file, name.PrincipalNameString(), r)
		}
		return fmt.Errorf("keytab %s holds no key of %s@%s; it holds %s", file, name.PrincipalNameString(), r, strings.Join(held, ", "))
	}
	return nil
}
