package testdc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/go-ldap/ldap/v3"
)

// protectedSDDL is the DACL AdminSDHolder stamps on protected accounts, in
// short: protected (P: no inheritance), full control for Domain Admins,
// SYSTEM and Administrators, read for Authenticated Users and the account
// itself, Change Password for the account and Everyone.
const protectedSDDL = "O:DAG:DAD:P" +
	"(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)" +
	"(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;BA)(A;;RPLCLORC;;;AU)(A;;RPLCLORC;;;PS)" +
	"(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;PS)(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD)"

// protect marks dn as a protected account: adminCount=1 and a DACL that
// does not inherit from its OU. The SDDL form of nTSecurityDescriptor is
// accepted by ldbmodify on the local database, not over LDAP.
func protect(ctx context.Context, c *ldap.Conn, cfg Config, dn string) error {
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("adminCount", []string{"1"})
	if err := c.Modify(m); err != nil {
		return fmt.Errorf("set adminCount on %s: %w", dn, err)
	}
	ldif := fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: nTSecurityDescriptor\nnTSecurityDescriptor: %s\n", dn, protectedSDDL)
	path := filepath.Join(cfg.Dir, "etc", "protect.ldif")
	if err := os.WriteFile(path, []byte(ldif), 0o600); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "ldbmodify", "-H", filepath.Join(cfg.Dir, "private", "sam.ldb"), path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ldbmodify protected DACL on %s: %w\n%s", dn, err, tail(out))
	}
	return nil
}
