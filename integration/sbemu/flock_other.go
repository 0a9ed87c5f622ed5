//go:build !unix

package sbemu

// lockFile is a no-op where flock is unavailable; concurrent npm ci runs are then possible.
func lockFile(string) (func(), error) { return func() {}, nil }
