package app

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/jonboulle/clockwork"

	"github.com/adwriteback/adwriteback/connector/config"
	"github.com/adwriteback/adwriteback/connector/engine"
	"github.com/adwriteback/adwriteback/connector/policy"
	"github.com/adwriteback/adwriteback/connector/policy/breach"
	"github.com/adwriteback/adwriteback/ldapx"
)

// NewDirectory builds the LDAP client of one configured domain (it does not
// dial), on the real clock.
func NewDirectory(d *config.Domain, log *slog.Logger) (*ldapx.Client, error) {
	return newDirectory(d, log, nil)
}

// newDirectory is NewDirectory on the app's clock (nil: the real one): the
// pool's timers and the Kerberos pre-authentication time read it.
func newDirectory(d *config.Domain, log *slog.Logger, clock clockwork.Clock) (*ldapx.Client, error) {
	cfg := d.LDAP()
	cfg.Logger, cfg.Clock = log.With("domain", d.Name), clock
	cl, err := ldapx.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	return cl, nil
}

// OrgExtras loads a domain's organisation rules: the banned-word list and
// the breached-password index (close the returned index when done; nil
// when none).
func OrgExtras(d *config.Domain) (*policy.BannedList, *breach.Index, error) {
	ld, err := loadOrgFiles(d, nil)
	if err != nil {
		return nil, nil, err
	}
	return ld.files.banned, ld.opened, nil
}

// How a load got a list, as the reload log says it.
const (
	listNone      = "none"      // none configured
	listUnchanged = "unchanged" // the file is as loaded before: the list in force is kept
	listReloaded  = "reloaded"  // read from its file
)

// orgFiles are a domain's organisation lists and the files they were
// loaded from, which tell the next load whether it can keep them.
type orgFiles struct {
	banned       *policy.BannedList
	bannedMode   policy.BannedMode
	bannedFile   fileStamp
	breached     *breach.Index
	breachedFile fileStamp
}

// lists are the engine's view of f.
func (f *orgFiles) lists() engine.OrgLists {
	l := engine.OrgLists{Banned: f.banned}
	if f.breached != nil { // never a nil *Index in the interface
		l.Breached = f.breached
	}
	return l
}

// orgLoad is one load of a domain's lists: the lists, how each was got
// (listNone, listUnchanged or listReloaded) and the index it opened (nil
// when it kept the one in force or has none), which the caller closes.
type orgLoad struct {
	files            *orgFiles
	banned, breached string
	opened           *breach.Index
}

// loadOrgFiles loads d's organisation lists, keeping those of prev (the
// lists in force; nil: none) whose file has not changed since prev loaded
// it: the same path, the same file (os.SameFile), of the same size and
// modification time. A file rewritten within the file system's time
// resolution at the same size is not seen as changed.
func loadOrgFiles(d *config.Domain, prev *orgFiles) (orgLoad, error) {
	if prev == nil {
		prev = &orgFiles{}
	}
	ld := orgLoad{files: &orgFiles{}, banned: listNone, breached: listNone}
	if path := d.OrgPolicy.BannedWordsFile; path != "" {
		f, err := os.Open(path)
		if err != nil {
			return orgLoad{}, fmt.Errorf("domain %s banned words: %w", d.Name, err)
		}
		err = ld.loadBanned(f, path, d.OrgPolicy.BannedMode, prev)
		f.Close()
		if err != nil {
			return orgLoad{}, fmt.Errorf("domain %s banned words: %w", d.Name, err)
		}
	}
	if path := d.OrgPolicy.BreachedIndex; path != "" {
		// The stamp is taken before the file is opened: a file replaced
		// in between is seen as changed by the next load, never the
		// other way round.
		fi, err := os.Stat(path)
		if err != nil {
			return orgLoad{}, fmt.Errorf("domain %s breached index: %w", d.Name, err)
		}
		stamp := stampOf(path, fi)
		if prev.breached != nil && prev.breachedFile.same(stamp) {
			ld.files.breached, ld.files.breachedFile, ld.breached = prev.breached, prev.breachedFile, listUnchanged
		} else {
			idx, err := breach.Open(path)
			if err != nil {
				return orgLoad{}, fmt.Errorf("domain %s breached index: %w", d.Name, err)
			}
			ld.files.breached, ld.files.breachedFile, ld.breached, ld.opened = idx, stamp, listReloaded, idx
		}
	}
	return ld, nil
}

// loadBanned reads into ld the banned-word list of the open file f,
// named path, in the named mode, unless prev holds the list of that file
// unchanged, in that mode.
func (ld *orgLoad) loadBanned(f *os.File, path, modeName string, prev *orgFiles) error {
	mode, err := policy.ParseBannedMode(modeName)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	stamp := stampOf(path, fi)
	if prev.banned != nil && prev.bannedMode == mode && prev.bannedFile.same(stamp) {
		ld.files.banned, ld.files.bannedMode, ld.files.bannedFile, ld.banned = prev.banned, mode, prev.bannedFile, listUnchanged
		return nil
	}
	banned, err := policy.ReadBannedListMode(f, mode)
	if err != nil {
		return err
	}
	ld.files.banned, ld.files.bannedMode, ld.files.bannedFile, ld.banned = banned, mode, stamp, listReloaded
	return nil
}

// fileStamp is a list file as it was when loaded: its path, and its
// identity, size and modification time.
type fileStamp struct {
	path string
	info os.FileInfo
}

// stampOf is the stamp of the file path, of information fi.
func stampOf(path string, fi os.FileInfo) fileStamp {
	// On Windows os.Stat reads the file's identity only when SameFile
	// first asks, and then from the path: ask now, while the path still
	// names this file.
	os.SameFile(fi, fi)
	return fileStamp{path: path, info: fi}
}

// same reports whether s and t are stamps of the same file, unchanged.
func (s fileStamp) same(t fileStamp) bool {
	return s.info != nil && t.info != nil && s.path == t.path && os.SameFile(s.info, t.info) &&
		s.info.Size() == t.info.Size() && s.info.ModTime().Equal(t.info.ModTime())
}
