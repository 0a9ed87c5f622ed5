package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is a check's outcome.
type Status string

// Outcomes. SKIP means the check could not run because one it depends on
// failed; it does not count as a failure by itself.
const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Check is one diagnosed item.
type Check struct {
	// Name says what was checked (e.g. "tls trust", "right reset_password").
	Name string `json:"name"`
	// Target is what it was checked on (a domain, a DC URL, an OU, a file);
	// "" for global checks.
	Target string `json:"target,omitempty"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says how to repair a WARN or FAIL: a config key or a command.
	Fix string `json:"fix,omitempty"`
}

func ok(name, target, format string, a ...any) Check {
	return Check{Name: name, Target: target, Status: OK, Detail: fmt.Sprintf(format, a...)}
}

func warn(name, target, detail, fix string) Check {
	return Check{Name: name, Target: target, Status: Warn, Detail: detail, Fix: fix}
}

func fail(name, target, detail, fix string) Check {
	return Check{Name: name, Target: target, Status: Fail, Detail: detail, Fix: fix}
}

func skip(name, target, why string) Check {
	return Check{Name: name, Target: target, Status: Skip, Detail: why}
}

// Report is every check, in the order they ran.
type Report struct {
	Config string  `json:"config"`
	Checks []Check `json:"checks"`
}

// Add appends checks.
func (r *Report) Add(c ...Check) { r.Checks = append(r.Checks, c...) }

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Count returns how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Find returns the checks with the given name (and target, when not "").
func (r *Report) Find(name, target string) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Name == name && (target == "" || c.Target == target) {
			out = append(out, c)
		}
	}
	return out
}

// Redact replaces every occurrence of each secret in the report with
// "[redacted]". Secrets shorter than 4 characters are ignored (they would
// blank out ordinary words).
func (r *Report) Redact(secrets ...string) {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return
	}
	rep := strings.NewReplacer(pairs...)
	for i := range r.Checks {
		c := &r.Checks[i]
		c.Name, c.Target, c.Detail, c.Fix = rep.Replace(c.Name), rep.Replace(c.Target), rep.Replace(c.Detail), rep.Replace(c.Fix)
	}
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	type summary struct {
		OK   int `json:"ok"`
		Warn int `json:"warn"`
		Fail int `json:"fail"`
		Skip int `json:"skip"`
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Summary summary `json:"summary"`
	}{r, summary{r.Count(OK), r.Count(Warn), r.Count(Fail), r.Count(Skip)}})
}

// WriteText writes the report for a person: one line per check, then the
// detail and the fix indented below it.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Config != "" {
		fmt.Fprintf(&b, "adwriteback doctor: %s\n\n", r.Config)
	}
	target := ""
	for _, c := range r.Checks {
		if c.Target != target {
			target = c.Target
			if target != "" {
				fmt.Fprintf(&b, "%s\n", target)
			}
		}
		fmt.Fprintf(&b, "  %-6s %s", "["+string(c.Status)+"]", c.Name)
		if c.Detail != "" {
			lines := strings.Split(c.Detail, "\n")
			fmt.Fprintf(&b, ": %s\n", lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(&b, "           %s\n", l)
			}
		} else {
			b.WriteString("\n")
		}
		if c.Fix != "" {
			for i, l := range strings.Split(c.Fix, "\n") {
				if i == 0 {
					fmt.Fprintf(&b, "         fix: %s\n", l)
				} else {
					fmt.Fprintf(&b, "              %s\n", l)
				}
			}
		}
	}
	fmt.Fprintf(&b, "\n%d OK, %d WARN, %d FAIL, %d SKIP\n", r.Count(OK), r.Count(Warn), r.Count(Fail), r.Count(Skip))
	_, err := io.WriteString(w, b.String())
	return err
}
