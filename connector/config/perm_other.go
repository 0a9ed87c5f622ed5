//go:build !unix && !windows

package config

// fileModeProblems finds nothing on systems with neither Unix permissions
// nor Windows security descriptors.
func fileModeProblems(string, fileKind) []string { return nil }
