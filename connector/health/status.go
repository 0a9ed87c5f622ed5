package health

import (
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/adwriteback/adwriteback/connector/audit"
)

// statusPage is the admin page. html/template escapes every value; the page
// has no script, its CSS is inline, and it reflows to cards on a phone.
var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>adwriteback status: {{.StatusText}}</title>
<style>
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#9a6700;--warn-bg:#fff8c5;--bad:#cf222e;--bad-bg:#ffebe9;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:#1f2328;background:#f6f8fa}
header{background:#fff;border-bottom:1px solid var(--line);padding:12px 16px}
header h1{font-size:1.25rem;margin:0 8px 0 0;display:inline-block}
.meta{color:var(--muted);font-size:.85rem;margin:4px 0 0}
main{padding:8px 16px 24px;max-width:1200px;margin:0 auto}
h2{font-size:1.05rem;margin:20px 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;font-size:.9rem;vertical-align:middle}
.badge.ok{color:var(--ok);background:var(--ok-bg)}.badge.warn{color:var(--warn);background:var(--warn-bg)}.badge.bad{color:var(--bad);background:var(--bad-bg)}
.summary{margin:6px 0 0;font-size:.9rem}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:6px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);background:#f6f8fa}
td{overflow-wrap:anywhere}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em}
.state{font-weight:600;white-space:nowrap}
.state::before{content:"";display:inline-block;width:.7em;height:.7em;border-radius:50%;margin-right:6px;vertical-align:baseline;background:currentColor}
.ok .state,.state.ok{color:var(--ok)}.warn .state,.state.warn{color:var(--warn)}.bad .state,.state.bad{color:var(--bad)}
.info .state{color:var(--muted)}
tr.warn{background:var(--warn-bg)}tr.bad{background:var(--bad-bg)}
.small{color:var(--muted);font-size:.85em}
.empty{color:var(--muted);background:#fff;border:1px dashed var(--line);padding:12px;border-radius:6px}
@media (max-width:700px){
 main{padding:4px 10px 16px}
 table,tbody,tr,td{display:block;width:100%}
 table{border:0;background:none}
 thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
 tr{background:#fff;border:1px solid var(--line);border-left-width:5px;border-radius:6px;margin:0 0 8px;padding:4px 0}
 tr.ok{border-left-color:var(--ok)}tr.warn{border-left-color:var(--warn)}tr.bad{border-left-color:var(--bad)}
 td{display:grid;grid-template-columns:6.5em 1fr;gap:8px;border:0;padding:3px 10px}
 td::before{content:attr(data-label);font-size:.8rem;color:var(--muted);font-weight:600}
 td.num{text-align:left}
}
</style>
</head>
<body>
<header>
<h1>adwriteback</h1><span class="badge {{.StatusClass}}" id="overall">{{.StatusText}}</span>
<p class="meta">version {{.Version}} · {{.Time}} · refreshes every 30 s</p>
<p class="summary">{{.OK}} ok · {{.Warnings}} warning{{if ne .Warnings 1}}s{{end}} · {{.Critical}} critical</p>
</header>
<main>
<section id="checks">
<h2>Readiness</h2>
<table>
<thead><tr><th>Check</th><th>State</th><th>Detail</th></tr></thead>
<tbody>
{{- range .Checks}}
<tr class="{{.Class}}"><td data-label="Check"><code>{{.Name}}</code></td><td data-label="State"><span class="state">{{.State}}</span></td><td data-label="Detail">{{.Detail}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
<section id="operations">
<h2>Last {{len .Ops}} operation{{if ne (len .Ops) 1}}s{{end}}</h2>
{{- if .Ops}}
<table>
<thead><tr><th>Time</th><th>Command</th><th>Op</th><th>User</th><th>Outcome</th><th>Rules</th><th>DC</th><th>Latency</th></tr></thead>
<tbody>
{{- range .Ops}}
<tr class="{{.Class}}"><td data-label="Time" class="mono">{{.Time}}</td><td data-label="Command" class="mono">{{.ID}}</td><td data-label="Op">{{.Op}}</td><td data-label="User">{{.User}}</td><td data-label="Outcome"><div><span class="state">{{.Outcome}}</span>{{if .Note}}<br><span class="small">{{.Note}}</span>{{end}}</div></td><td data-label="Rules">{{.Rules}}</td><td data-label="DC" class="mono">{{.DC}}</td><td data-label="Latency" class="num">{{.Latency}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="empty">No operation since the connector started.</p>
{{- end}}
</section>
<section id="counters">
<h2>Counters</h2>
{{- if .Counters}}
<table>
<thead><tr><th>Metric</th><th>Value</th></tr></thead>
<tbody>
{{- range .Counters}}
<tr><td data-label="Metric"><code>{{.Name}}</code></td><td data-label="Value" class="num">{{.Value}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="empty">No counters.</p>
{{- end}}
</section>
</main>
</body>
</html>
`))

type statusView struct {
	StatusText, StatusClass string
	Version, Time           string
	OK, Warnings, Critical  int
	Checks                  []checkView
	Ops                     []opView
	Counters                []counterView
}

type checkView struct{ Name, State, Class, Detail string }

type opView struct {
	Time, ID, Op, User, Outcome, Note, Rules, DC, Latency, Class string
}

type counterView struct{ Name, Value string }

func statusData(rep Report, ops []audit.Record, counters map[string]float64, version string) statusView {
	v := statusView{Version: version, Time: formatTime(rep.Time)}
	if v.Version == "" {
		v.Version = "dev"
	}
	switch rep.Status {
	case StatusReady:
		v.StatusText, v.StatusClass = "Ready", "ok"
	case StatusDegraded:
		v.StatusText, v.StatusClass = "Ready, with warnings", "warn"
	default:
		v.StatusText, v.StatusClass = "Not ready", "bad"
	}
	for _, c := range rep.Checks {
		cv := checkView{Name: c.Name, Detail: c.Detail}
		switch c.Severity {
		case SeverityOK:
			cv.State, cv.Class = "OK", "ok"
			v.OK++
		case SeverityInfo:
			cv.State, cv.Class = "Info", "info"
			v.OK++
		case SeverityWarning:
			cv.State, cv.Class = "Warning", "warn"
			v.Warnings++
		default:
			cv.State, cv.Class = "Critical", "bad"
			v.Critical++
		}
		v.Checks = append(v.Checks, cv)
	}
	for _, r := range ops {
		ov := opView{
			Time: formatTime(r.Time), ID: r.CommandID, Op: r.Op, User: r.UserDN, Outcome: r.Outcome,
			Rules: strings.Join(r.Rules, ", "), DC: r.DC, Class: outcomeClass(r.Outcome),
			Latency: strconv.FormatFloat(r.LatencyMS, 'f', 1, 64) + " ms",
		}
		if ov.User == "" && r.UserRefKind != "" {
			ov.User = "(" + r.UserRefKind + ", not resolved)"
		}
		var notes []string
		if r.DCReason != "" {
			notes = append(notes, "DC: "+r.DCReason)
		}
		if r.FromJournal {
			notes = append(notes, "answered from journal")
		}
		if r.DeliveryCount > 1 {
			notes = append(notes, "delivery "+strconv.FormatUint(uint64(r.DeliveryCount), 10))
		}
		ov.Note = strings.Join(notes, "; ")
		for _, f := range []*string{&ov.ID, &ov.Op, &ov.User, &ov.Outcome, &ov.Rules, &ov.DC} {
			if *f == "" {
				*f = "–"
			}
		}
		v.Ops = append(v.Ops, ov)
	}
	names := make([]string, 0, len(counters))
	for n := range counters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v.Counters = append(v.Counters, counterView{Name: n, Value: strconv.FormatFloat(counters[n], 'f', -1, 64)})
	}
	return v
}

// outcomeClass colours an operation: green for success, amber for outcomes
// that retry or wait, red for the rest.
func outcomeClass(outcome string) string {
	switch outcome {
	case "succeeded":
		return "ok"
	case "transient", "rate_limited":
		return "warn"
	default:
		return "bad"
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func renderStatus(w io.Writer, v statusView) error {
	return statusPage.Execute(w, v)
}
