//go:build unix

package config

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/adwriteback/adwriteback/relay/keys"
)

func fileModeProblems(file string, kind fileKind) []string {
	st, err := os.Stat(file)
	if err != nil {
		return nil
	}
	return fileProblems(file, st, kind, os.Geteuid())
}

// fileProblems judges a file's owner and mode for kind, for a process
// running as euid: the owner must be euid or root (an owner can always
// chmod its file), group and others must not write it, and for a secret
// must not read it either. Each problem names the command that fixes it.
func fileProblems(file string, st fs.FileInfo, kind fileKind, euid int) []string {
	var out []string
	if s, ok := st.Sys().(*syscall.Stat_t); ok && int(s.Uid) != euid && s.Uid != 0 {
		out = append(out, fmt.Sprintf("%s is owned by uid %d, who could change it; make it this process's user's (uid %d) or root's: run chown %d %s",
			file, s.Uid, euid, euid, file))
	}
	perm := st.Mode().Perm()
	switch {
	case kind == secretFile && keys.ModeExposed(perm):
		out = append(out, fmt.Sprintf("%s has mode %04o: group or others can %s this secret; run chmod 600 %s",
			file, perm, accessVerb(perm&0o044 != 0, perm&0o022 != 0), file))
	case perm&0o022 != 0:
		out = append(out, fmt.Sprintf("%s has mode %04o: group or others can change what it makes the connector trust; run chmod go-w %s",
			file, perm, file))
	}
	return out
}
