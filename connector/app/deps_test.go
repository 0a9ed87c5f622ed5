package app

// The dependency test lives here because app is the one package allowed to
// import everything: the rules below are about everyone else.

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/adwriteback/adwriteback"

// The Azure SDK packages the transport-neutral core must never reach.
var azure = []string{
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus",
	"github.com/Azure/go-amqp",
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity",
}

// depRule forbids every package under one of from (the path or its
// subpackages) to depend, directly or not, on anything under one of not.
type depRule struct {
	why  string
	from []string
	not  []string
}

func mod(paths ...string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = module + "/" + p
	}
	return out
}

var depRules = []depRule{
	{
		why: "the pipeline, its rules, its journal, the wire protocol, the HTTPS report, the proxy and the LDAP layer know no queue SDK",
		from: mod("connector/engine", "connector/policy", "connector/journal", "relay/protocol", "relay/transport",
			"relay/httpreport", "relay/proxy", "ldapx"),
		not: azure,
	},
	{
		why:  "the LDAP layer and the relay packages are libraries the connector uses, never the reverse",
		from: mod("ldapx", "relay"),
		not:  mod("connector"),
	},
	{
		why:  "the LDAP layer knows nothing of the relay",
		from: mod("ldapx"),
		not:  mod("relay"),
	},
	{
		why:  "health and metrics read plain states; app adapts the engine, LDAP and Service Bus to them",
		from: mod("connector/health", "connector/metrics"),
		not:  append(mod("connector/engine", "ldapx", "relay/servicebus"), azure...),
	},
	{
		why:  "presence reads the state /readyz reads and hands signed heartbeats to a Sender; app wires it to Service Bus",
		from: mod("connector/presence"),
		not:  append(mod("connector/engine", "ldapx", "relay/servicebus", "relay/sender"), azure...),
	},
}

// under reports whether pkg is p or one of its subpackages.
func under(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// violations lists "pkg -> dep (why)" for every rule broken in deps, a map
// from each package to its transitive dependencies.
func violations(deps map[string][]string, rules []depRule) []string {
	var out []string
	for pkg, ds := range deps {
		for _, r := range rules {
			if !under(pkg, r.from) {
				continue
			}
			for _, d := range ds {
				if under(d, r.not) {
					out = append(out, pkg+" -> "+d+" ("+r.why+")")
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// listDeps runs `go list -deps` over the module for one GOOS and returns
// every module package with its transitive dependencies (test files excluded:
// what ships is what counts).
func listDeps(t *testing.T, goos string) map[string][]string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command to list dependencies with: %v", err)
		}
	}
	cmd := exec.Command(goBin, "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (GOOS=%s): %v\n%s", goos, err, stderr.String())
	}
	deps := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			deps[f[0]] = f[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return deps
}

// TestDependencies fails when a package depends on what its layer must not
// (in the style of tailscale's tstest/deptest), on every OS the connector
// ships for.
func TestDependencies(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		t.Run(goos, func(t *testing.T) {
			deps := listDeps(t, goos)
			for _, r := range depRules {
				for _, f := range r.from {
					if !slices.ContainsFunc(slices.Collect(maps.Keys(deps)), func(p string) bool { return under(p, []string{f}) }) {
						t.Errorf("rule %q names %s, under which go list finds no package: fix the rule", r.why, f)
					}
				}
			}
			for _, v := range violations(deps, depRules) {
				t.Error(v)
			}
		})
	}
}

// TestDependenciesCanFail proves the check bites on the real graph: app,
// the wiring, does reach the Service Bus SDK, so a rule forbidding it must
// report that; and a subpackage of a ruled package is caught too.
func TestDependenciesCanFail(t *testing.T) {
	deps := listDeps(t, runtime.GOOS)
	got := violations(deps, []depRule{{why: "test", from: mod("connector/app"), not: azure[:1]}})
	want := module + "/connector/app -> " + azure[0] + " (test)"
	if !slices.Contains(got, want) {
		t.Errorf("a rule app -/-> azservicebus reported %q, want it to include %q", got, want)
	}
	fake := map[string][]string{module + "/ldapx/sub": {module + "/connector/engine"}}
	if v := violations(fake, depRules); len(v) != 1 {
		t.Errorf("ldapx/sub -> connector/engine: violations = %q, want one", v)
	}
	if v := violations(map[string][]string{module + "/ldapxtra": {module + "/connector"}}, depRules); len(v) != 0 {
		t.Errorf("ldapxtra is not under ldapx: violations = %q", v)
	}
}
