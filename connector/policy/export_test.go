package policy

// RefBanned is the slow reference matcher (fuzz_test.go), for the external
// tests that run it against the synthetic list of policybench, which
// imports this package.
var RefBanned = refBanned
