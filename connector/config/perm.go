package config

// fileKind is what a file named in the configuration is trusted with,
// and so who may read or change it.
type fileKind int

const (
	// trustAnchor decides what the connector trusts (a CA file, a sender
	// public key, the configuration itself): no one but its owner may
	// change it.
	trustAnchor fileKind = iota
	// secretFile holds a secret (a password, a connection string, a
	// private key): no one but its owner may read or change it.
	secretFile
)

// accessVerb says what someone may do to a secret: read it, change it, or
// both.
func accessVerb(read, change bool) string {
	switch {
	case read && change:
		return "read and change"
	case change:
		return "change"
	}
	return "read"
}

// checkFile adds a problem at path for each way file's owner or mode lets
// someone other than this process's user or root read it (a secret) or
// change it (any kind). A file that cannot be stat'ed is left to the code
// that reads it to report.
func checkFile(path, file string, kind fileKind, add addFunc) {
	if file == "" {
		return
	}
	for _, msg := range fileModeProblems(file, kind) {
		add(path, "%s", msg)
	}
}
