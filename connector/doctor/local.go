package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/relay/keys"
)

// CheckConfig judges config.Load's result.
func CheckConfig(cfg *config.Config, err error, path string) Check {
	const name = "config"
	if err == nil {
		return ok(name, path, "loaded: %d domain(s), queue %q, results by %s", len(cfg.Domains), cfg.Queue.Name, cfg.Results.Mode)
	}
	var probs config.Problems
	if errors.As(err, &probs) {
		return fail(name, path, err.Error(), "edit "+path+": correct each key listed (see configs/reference.yaml for every key); `adwriteback check-config --config "+path+"` re-checks")
	}
	return fail(name, path, err.Error(), "make "+path+" readable by the service user, or pass the right --config")
}

// CheckConnectorKeys loads each connector private key file and prints its
// key id, which the sender side must know.
func CheckConnectorKeys(files []string) []Check {
	var out []Check
	var loaded []*keys.ConnectorPrivate
	for _, f := range files {
		const name = "connector key"
		if st, err := os.Stat(f); err == nil && keys.ModeExposed(st.Mode()) {
			out = append(out, fail(name, f, fmt.Sprintf("mode %04o: group or others can read the private key", st.Mode().Perm()),
				fmt.Sprintf("chmod 600 %s (and make it owned by the service user)", f)))
			continue
		}
		k, err := keys.LoadConnectorPrivate(f)
		if err != nil {
			out = append(out, keyLoadFailure(name, f, err, "adwriteback keygen --out DIR --only connector"))
			continue
		}
		loaded = append(loaded, k)
		role := "decrypts passwords sealed to this kid"
		if len(loaded) == 1 {
			role += " and signs results"
		}
		out = append(out, ok(name, f, "kid %s (created %s) %s; senders must seal to the public key with this kid (connector.pub.json from keygen)",
			k.KID, k.Created.UTC().Format("2006-01-02"), role))
	}
	if len(files) == 0 {
		out = append(out, fail("connector key", "", "keys.connector lists no key file", "generate one with `adwriteback keygen --out DIR` and list DIR/connector.key.json under keys.connector"))
	}
	if len(loaded) > 1 {
		if _, err := keys.OpenKeysOf(loaded...); err != nil {
			out = append(out, fail("connector keys", "", err.Error(), "list each connector key file once under keys.connector"))
		}
	}
	return out
}

// CheckSenderKeys loads each trusted sender public key.
func CheckSenderKeys(files []string) []Check {
	var out []Check
	var loaded []*keys.SenderPublic
	for _, f := range files {
		const name = "sender key"
		k, err := keys.LoadSenderPublic(f)
		if err != nil {
			out = append(out, keyLoadFailure(name, f, err, "copy the sender's public key file (sender.pub.json from `adwriteback keygen`) from the cloud side"))
			continue
		}
		loaded = append(loaded, k)
		out = append(out, ok(name, f, "kid %s: commands signed with it are accepted", k.KID))
	}
	if len(files) == 0 {
		out = append(out, fail("sender key", "", "keys.senders lists no key file: every command would be refused as unsigned", "list the sender's public key file under keys.senders"))
	}
	if len(loaded) > 1 {
		if _, err := keys.VerifyKeysOf(loaded...); err != nil {
			out = append(out, fail("sender keys", "", err.Error(), "list each sender key file once under keys.senders"))
		}
	}
	return out
}

func keyLoadFailure(name, f string, err error, regen string) Check {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(name, f, "the file does not exist", "correct the path in keys, or create it: "+regen)
	case errors.Is(err, fs.ErrPermission):
		return fail(name, f, "the file is not readable by this user", fmt.Sprintf("make %s readable by the service user (chown it; keep mode 0600 for private keys)", f))
	case errors.Is(err, keys.ErrInvalidKey):
		return fail(name, f, fmt.Sprintf("not a valid key file: %v", err), "replace it with the file written by "+regen)
	}
	return fail(name, f, err.Error(), "check the file, or recreate it: "+regen)
}

// CheckJournalPath checks the journal's directory is writable (the journal
// file is created there) and, if the file exists, that it can be opened
// for writing. Nothing is changed.
func CheckJournalPath(path string) Check {
	return checkWritable("journal path", path, "journal.path")
}

// CheckAuditPath checks the audit log can be appended to ("-" is stdout).
func CheckAuditPath(path string) Check {
	if path == "-" {
		return ok("audit path", path, "standard output")
	}
	return checkWritable("audit path", path, "audit.path")
}

func checkWritable(name, path, key string) Check {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return fail(name, path, fmt.Sprintf("directory %s does not exist", dir),
			fmt.Sprintf("create it (mkdir -p %s, owned by the service user) or change %s", dir, key))
	}
	f, err := os.CreateTemp(dir, ".adwriteback-doctor-*")
	if err != nil {
		return fail(name, path, fmt.Sprintf("cannot create files in %s: %v", dir, err),
			fmt.Sprintf("make %s writable by the service user (chown), or change %s", dir, key))
	}
	f.Close()
	os.Remove(f.Name())
	if _, err := os.Stat(path); err == nil {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fail(name, path, fmt.Sprintf("the file exists but cannot be written: %v", err),
				fmt.Sprintf("make %s writable by the service user (chown)", path))
		}
		f.Close()
		return ok(name, path, "exists and is writable")
	}
	return ok(name, path, "directory %s is writable; the file will be created", dir)
}
