package testdc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fixed facts of the throw-away domain. The passwords are test-only values
// for a DC that listens on loopback and is destroyed after the run.
const (
	Realm       = "ADW.TEST"
	NetBIOS     = "ADW"
	HostName    = "dc1"
	BaseDN      = "DC=adw,DC=test"
	AdminPass   = "Adm1n!Throwaway.Pass"
	ServicePass = "Svc!Writeback.2026"
	UserPass    = "Start!Pass.2026"
)

// provisionVersion names what provisioning gives a DC; a DC whose state
// holds an older one is provisioned again by Up (version 2: Kerberos, see
// kerberos.go).
const provisionVersion = 2

// Config says where the DC lives. The zero value is completed from the
// environment ($ADW_TESTDC_DIR, $ADW_TESTDC_ADDR) and defaults.
type Config struct {
	Dir  string
	Addr string
	// MaxRuntime ends the samba process by itself after this long, so a DC
	// left behind by a killed test run does not linger (default 4h).
	MaxRuntime time.Duration
	// Log receives progress lines; nil is silent.
	Log func(format string, a ...any)
}

func (c Config) withDefaults() Config {
	if c.Dir == "" {
		c.Dir = os.Getenv("ADW_TESTDC_DIR")
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(os.TempDir(), "adwriteback-testdc")
	}
	if c.Addr == "" {
		c.Addr = os.Getenv("ADW_TESTDC_ADDR")
	}
	if c.Addr == "" {
		c.Addr = "127.77.0.10"
	}
	if c.MaxRuntime == 0 {
		c.MaxRuntime = 4 * time.Hour
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	return c
}

// Info describes a running DC: everything a test needs to reach it.
type Info struct {
	// Provision is the provisioning version the DC was made with.
	Provision int    `json:"provision"`
	Dir       string `json:"dir"`
	Addr      string `json:"addr"`
	// Host is the DC's host name: its certificate names it (and Addr),
	// and its machine account has the SPN ldap/<Host> (LDAPSPN). It
	// resolves nowhere but in a hosts file that maps it to Addr.
	Host string `json:"host"`
	// KDC is the DC's Kerberos KDC, Addr:88; Realm its realm.
	KDC       string `json:"kdc"`
	LDAPSURL  string `json:"ldapsURL"`
	LDAPURL   string `json:"ldapURL"`
	CAFile    string `json:"caFile"`
	ConfFile  string `json:"confFile"`
	BaseDN    string `json:"baseDN"`
	Realm     string `json:"realm"`
	AdminDN   string `json:"adminDN"`
	AdminPass string `json:"adminPass"`

	ServiceDN   string `json:"serviceDN"`
	ServiceUPN  string `json:"serviceUPN"`
	ServicePass string `json:"servicePass"`

	InScopeOU     string `json:"inScopeOU"`
	OutOfScopeOU  string `json:"outOfScopeOU"`
	ProtectedDN   string `json:"protectedDN"`
	StrictGroupDN string `json:"strictGroupDN"` // PSO: min length 16
	StrictPSODN   string `json:"strictPSODN"`
	ChangeGroupDN string `json:"changeGroupDN"` // PSO: min age 0, history 24
	ChangePSODN   string `json:"changePSODN"`
	// Users holds the seeded users by sAMAccountName; their password is UserPass.
	Users map[string]SeedUser `json:"users"`
}

// SeedUser is one seeded account.
type SeedUser struct {
	DN          string `json:"dn"`
	SAM         string `json:"sam"`
	UPN         string `json:"upn"`
	DisplayName string `json:"displayName"`
}

func (c Config) stateFile() string { return filepath.Join(c.Dir, "state.json") }
func (c Config) confFile() string  { return filepath.Join(c.Dir, "etc", "smb.conf") }
func (c Config) pidFile() string   { return filepath.Join(c.Dir, "run", "samba.pid") }

// ErrNeedsRoot is returned when the DC must be installed or started and the
// process is not root (Samba binds ports below 1024 and needs root to
// provision).
var ErrNeedsRoot = errors.New("the test DC needs root: Samba binds ports 389/636 and provisions as root; run the integration tests as root (CI does)")

// Up makes sure the DC is installed, provisioned, seeded and running, and
// returns how to reach it. It is idempotent and safe to call concurrently
// from several processes.
func Up(ctx context.Context, cfg Config) (*Info, error) {
	cfg = cfg.withDefaults()
	unlock, err := lock(cfg)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if info, err := readState(cfg); err == nil && info.Provision == provisionVersion {
		if running(cfg) && ready(ctx, info, time.Second) == nil {
			return info, nil
		}
		cfg.Log("testdc: provisioned but not running; starting")
		if err := start(ctx, cfg, info); err != nil {
			return nil, err
		}
		return info, nil
	}
	if os.Geteuid() != 0 {
		return nil, ErrNeedsRoot
	}
	if _, err := readState(cfg); err == nil {
		cfg.Log("testdc: provisioned by an older harness; provisioning again")
		if err := stop(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if err := install(ctx, cfg); err != nil {
		return nil, err
	}
	cfg.Log("testdc: provisioning %s on %s", Realm, cfg.Addr)
	if err := provision(ctx, cfg); err != nil {
		return nil, err
	}
	info := cfg.info()
	if err := start(ctx, cfg, info); err != nil {
		return nil, err
	}
	cfg.Log("testdc: seeding")
	if err := seed(ctx, cfg, info); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := writeState(cfg, info); err != nil {
		return nil, err
	}
	cfg.Log("testdc: ready at %s", info.LDAPSURL)
	return info, nil
}

// Stop stops the DC's processes, keeping its directory (Start brings it back).
func Stop(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	unlock, err := lock(cfg)
	if err != nil {
		return err
	}
	defer unlock()
	return stop(ctx, cfg)
}

// Down stops the DC and destroys its directory.
func Down(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	unlock, err := lock(cfg)
	if err != nil {
		return err
	}
	defer unlock()
	if err := stop(ctx, cfg); err != nil {
		return err
	}
	return os.RemoveAll(cfg.Dir)
}

// Status reports the state of the DC without changing anything.
func Status(ctx context.Context, cfg Config) (*Info, bool, error) {
	cfg = cfg.withDefaults()
	info, err := readState(cfg)
	if err != nil {
		return nil, false, err
	}
	return info, running(cfg) && ready(ctx, info, time.Second) == nil, nil
}

func (c Config) info() *Info {
	host := HostName + "." + strings.ToLower(Realm)
	in := "OU=Managed," + BaseDN
	users := map[string]SeedUser{}
	for _, u := range seedUsers {
		ou := in
		if !u.inScope {
			ou = "OU=Unmanaged," + BaseDN
		}
		users[u.sam] = SeedUser{
			DN:          "CN=" + u.cn + "," + ou,
			SAM:         u.sam,
			UPN:         u.sam + "@" + strings.ToLower(Realm),
			DisplayName: u.display,
		}
	}
	return &Info{
		Provision:     provisionVersion,
		Dir:           c.Dir,
		Addr:          c.Addr,
		Host:          host,
		KDC:           kdcAddr(c.Addr),
		LDAPSURL:      "ldaps://" + c.Addr + ":636",
		LDAPURL:       "ldap://" + c.Addr + ":389",
		CAFile:        filepath.Join(c.Dir, "tls", "ca.pem"),
		ConfFile:      c.confFile(),
		BaseDN:        BaseDN,
		Realm:         Realm,
		AdminDN:       "CN=Administrator,CN=Users," + BaseDN,
		AdminPass:     AdminPass,
		ServiceDN:     "CN=svc-writeback,OU=Service," + BaseDN,
		ServiceUPN:    "svc-writeback@" + strings.ToLower(Realm),
		ServicePass:   ServicePass,
		InScopeOU:     in,
		OutOfScopeOU:  "OU=Unmanaged," + BaseDN,
		ProtectedDN:   users["protected"].DN,
		StrictGroupDN: "CN=pso-strict-members,OU=Groups," + BaseDN,
		StrictPSODN:   "CN=pso-strict,CN=Password Settings Container,CN=System," + BaseDN,
		ChangeGroupDN: "CN=pso-change-members,OU=Groups," + BaseDN,
		ChangePSODN:   "CN=pso-change,CN=Password Settings Container,CN=System," + BaseDN,
		Users:         users,
	}
}

func lock(cfg Config) (func(), error) {
	path := strings.TrimRight(cfg.Dir, "/") + ".lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testdc lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("testdc lock: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func readState(cfg Config) (*Info, error) {
	b, err := os.ReadFile(cfg.stateFile())
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("testdc state %s: %w", cfg.stateFile(), err)
	}
	return &info, nil
}

func writeState(cfg Config, info *Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(cfg.stateFile(), b, 0o600)
}

func install(ctx context.Context, cfg Config) error {
	if _, err := exec.LookPath("samba"); err == nil {
		if _, err := exec.LookPath("samba-tool"); err == nil {
			return nil
		}
	}
	script, err := findInstallScript()
	if err != nil {
		return err
	}
	cfg.Log("testdc: installing Samba from Debian's packages")
	out, err := exec.CommandContext(ctx, "bash", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("installing Samba (%s): %w\n%s", script, err, out)
	}
	return nil
}

// findInstallScript locates integration/scripts/install-deps.sh from the
// working directory (tests run in their package directory).
func findInstallScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "integration", "scripts", "install-deps.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("samba is not installed and integration/scripts/install-deps.sh was not found; run it as root")
		}
		dir = parent
	}
}

func provision(ctx context.Context, cfg Config) error {
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return err
	}
	for _, d := range []string{"etc", "run", "tls", "log"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return err
		}
	}
	ip := net.ParseIP(cfg.Addr)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("testdc address %q must be a loopback IPv4 address", cfg.Addr)
	}
	host := HostName + "." + strings.ToLower(Realm)
	tlsDir := filepath.Join(cfg.Dir, "tls")
	if err := makeCerts(tlsDir, host, ip); err != nil {
		return err
	}
	empty := filepath.Join(cfg.Dir, "etc", "empty.conf")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return err
	}
	run := filepath.Join(cfg.Dir, "run")
	opts := []string{
		"interfaces=" + cfg.Addr + "/8",
		"bind interfaces only=yes",
		"server services=-nbt -wrepl -dnsupdate -dns",
		"disable netbios=yes",
		"pid directory=" + run,
		"ncalrpc dir=" + filepath.Join(run, "ncalrpc"),
		"winbindd socket directory=" + filepath.Join(run, "winbindd"),
		"lock directory=" + filepath.Join(run, "lock"),
		"state directory=" + filepath.Join(run, "state"),
		"cache directory=" + filepath.Join(run, "cache"),
		"log file=" + filepath.Join(cfg.Dir, "log", "samba.log"),
		"ldb:nosync=true",
		"acl_xattr:security_acl_name=user.NTACL",
		"tls enabled=yes",
		"tls keyfile=" + filepath.Join(tlsDir, "key.pem"),
		"tls certfile=" + filepath.Join(tlsDir, "cert.pem"),
		"tls cafile=" + filepath.Join(tlsDir, "ca.pem"),
	}
	args := []string{"domain", "provision", "-s", empty,
		"--targetdir=" + cfg.Dir, "--realm=" + Realm, "--domain=" + NetBIOS,
		"--host-name=" + HostName, "--server-role=dc", "--dns-backend=NONE",
		"--adminpass=" + AdminPass,
	}
	for _, o := range opts {
		args = append(args, "--option="+o)
	}
	out, err := exec.CommandContext(ctx, "samba-tool", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-tool domain provision: %w\n%s", err, tail(out))
	}
	// Options provision does not carry into smb.conf. The old password
	// stays valid for 60 minutes after a change by default; tests expect
	// it to fail at once.
	conf, err := os.ReadFile(cfg.confFile())
	if err != nil {
		return err
	}
	extra := "[global]\n\told password allowed period = 0\n"
	text := configureKerberos(strings.Replace(string(conf), "[global]\n", extra, 1))
	return os.WriteFile(cfg.confFile(), []byte(text), 0o600)
}

func start(ctx context.Context, cfg Config, info *Info) error {
	cmd := exec.Command("samba", "-s", cfg.confFile(), "-D",
		"--maximum-runtime="+strconv.Itoa(int(cfg.MaxRuntime.Seconds())))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start samba: %w\n%s", err, tail(out))
	}
	if err := ready(ctx, info, 60*time.Second); err != nil {
		return fmt.Errorf("samba started but LDAPS is not answering (log: %s): %w",
			filepath.Join(cfg.Dir, "log", "samba.log"), err)
	}
	return nil
}

func readPID(cfg Config) (int, error) {
	b, err := os.ReadFile(cfg.pidFile())
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func running(cfg Config) bool {
	pid, err := readPID(cfg)
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// stop sends SIGTERM to the samba master and, after it is gone or a grace
// period, SIGKILL to every process still using this DC's config file.
func stop(ctx context.Context, cfg Config) error {
	pid, err := readPID(cfg)
	if err == nil && pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitFor(ctx, 10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	}
	for _, p := range leftovers(cfg) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	waitFor(ctx, 5*time.Second, func() bool { return len(leftovers(cfg)) == 0 })
	_ = os.Remove(cfg.pidFile())
	return nil
}

// leftovers lists processes whose command line names this DC's config.
func leftovers(cfg Config) []int {
	conf := cfg.confFile()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), conf) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ready waits until LDAPS answers a rootDSE-style TLS handshake verified
// against the test CA, or the timeout ends.
func ready(ctx context.Context, info *Info, timeout time.Duration) error {
	cfg, err := TLSConfig(info)
	if err != nil {
		return err
	}
	var last error
	ok := waitFor(ctx, timeout, func() bool {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: cfg}
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(info.Addr, "636"))
		if err != nil {
			last = err
			return false
		}
		c.Close()
		return true
	})
	if !ok {
		if last == nil {
			last = ctx.Err()
		}
		return fmt.Errorf("LDAPS at %s:636 not ready: %w", info.Addr, last)
	}
	return nil
}

// TLSConfig trusts the test CA and verifies the DC's address.
func TLSConfig(info *Info) (*tls.Config, error) {
	pem, err := os.ReadFile(info.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", info.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: info.Addr}, nil
}

// waitFor polls cond every 50ms until it holds, the timeout ends or ctx is
// done; it reports whether cond held.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
