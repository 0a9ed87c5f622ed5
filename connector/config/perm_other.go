//go:build !unix

package config

// fileModeProblems finds nothing on systems without Unix permissions. On
// Windows the owner and DACL of each file should be checked instead (no
// write access for anyone but the service account, SYSTEM and
// Administrators; no read access to secrets either): that is future work,
// and until then Windows relies on the folder ACLs the operator sets.
func fileModeProblems(string, fileKind) []string { return nil }
