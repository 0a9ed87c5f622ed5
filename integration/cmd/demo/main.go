// Command demo runs the local demo against the throw-away Samba AD DC: it
// starts the DC if needed and shows the directory core at work, as the
// connector's service account: the DC's rootDSE, a user's effective
// policy, a reset that passes (the user then binds with it), resets the DC
// refuses with its reason, and the least-privilege refusals.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/adwriteback/adwriteback/integration/testdc"
	"github.com/adwriteback/adwriteback/ldapx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	info, err := testdc.Up(ctx, testdc.Config{Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		return err
	}
	cl, err := ldapx.New(ldapx.Config{
		Servers: []string{info.LDAPSURL}, BindDN: info.ServiceDN, BindPassword: info.ServicePass, CAFile: info.CAFile,
	})
	if err != nil {
		return err
	}
	defer cl.Close()

	r, err := cl.RootDSE(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("== Domain controller %s (%s), naming context %s, policy hints: %s\n",
		r.DNSHostName, r.DC, r.DefaultNamingContext, orNone(r.PolicyHintsOID()))

	show := func(sam string) (*ldapx.User, error) {
		u, err := cl.FindUser(ctx, ldapx.UserRef{Kind: ldapx.RefSAM, Value: sam})
		if err != nil {
			return nil, err
		}
		p, err := cl.EffectivePolicy(ctx, u)
		if err != nil {
			return nil, err
		}
		src := "domain"
		if p.PSO != "" {
			src = p.PSO
		}
		fmt.Printf("\n== %s (%s, %q)\n   policy from %s: min length %d, complexity %v, history %d, min age %v\n",
			u.SAMAccountName, u.DN, u.DisplayName, src, p.MinLength, p.Complexity, p.HistoryLength, p.MinAge)
		return u, nil
	}
	step := func(what string, err error) {
		if err == nil {
			fmt.Printf("   %-44s -> applied\n", what)
			return
		}
		var e *ldapx.Error
		if errors.As(err, &e) {
			fmt.Printf("   %-44s -> %s (LDAP %d, %08X) %s\n", what, e.Kind, e.ResultCode, e.WinCode, e.Reason)
			return
		}
		fmt.Printf("   %-44s -> %v\n", what, err)
	}

	alice, err := show("alice")
	if err != nil {
		return err
	}
	pw := fmt.Sprintf("Demo!Run.%d", time.Now().Unix()%100000)
	_, err = cl.Reset(ctx, alice.DN, pw, ldapx.ResetOptions{Unlock: true})
	step("reset to a good password (+ unlock)", err)
	if err == nil {
		c, berr := testdc.Bind(ctx, info, alice.DN, pw)
		if berr == nil {
			c.Close()
		}
		step("alice binds with the new password", berr)
	}
	_, err = cl.Reset(ctx, alice.DN, "Ab1!", ldapx.ResetOptions{})
	step("reset to a 4-character password", err)
	_, err = cl.Reset(ctx, alice.DN, "onlylowercaseletters", ldapx.ResetOptions{})
	step("reset to lowercase letters only", err)

	strict, err := show("strict")
	if err != nil {
		return err
	}
	_, err = cl.Reset(ctx, strict.DN, "Twelve!Char1", ldapx.ResetOptions{})
	step("reset to 12 characters under a 16 PSO", err)

	fmt.Printf("\n== least privilege (service account %s)\n", info.ServiceUPN)
	_, err = cl.Reset(ctx, info.Users["outsider"].DN, pw, ldapx.ResetOptions{})
	step("reset a user outside the managed OU", err)
	_, err = cl.Reset(ctx, info.ProtectedDN, pw, ldapx.ResetOptions{})
	step("reset a protected account (adminCount=1)", err)
	_, err = cl.FindUser(ctx, ldapx.UserRef{Kind: ldapx.RefConsistencyGUID, Value: testdc.ConsistencyGUIDDup})
	step("find by a duplicated immutable id", err)
	fmt.Println("\nThe DC keeps running; stop it with: go run ./integration/cmd/testdc down")
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "not advertised"
	}
	return s
}
