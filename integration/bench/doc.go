// Package bench measures the connector against its performance targets
// (docs/design.md): the connector's own cost in one process with an
// instant directory (ConnectorBound, with the crypto-only floor beside
// it), and the DC-bound throughput of the full pipeline against a real
// Samba DC compared with a bare go-ldap reset loop and the naive
// dial+bind+modify+close approach (DCBound); and the local password
// policy pre-check against a 1,000,000-term banned list, beside a run
// with no list (PolicyCheck). It owns the results table
// (Table) and RESULTS.md; integration/cmd/bench runs it all.
//
// These are benchmarks: they report numbers and never assert timings.
package bench
