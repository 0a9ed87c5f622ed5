package winsvc

import (
	"errors"
	"fmt"
	"strings"
)

// AccountKind is the kind of account a service runs as. Each runs
// without a password stored with the service.
type AccountKind int

const (
	// Virtual is the service's own virtual account, NT SERVICE\<name>
	// (the default): a local identity; on the network it is the machine
	// account.
	Virtual AccountKind = iota
	// BuiltIn is LocalSystem, NT AUTHORITY\LocalService or
	// NT AUTHORITY\NetworkService (LocalSystem and NetworkService are the
	// machine account on the network).
	BuiltIn
	// ManagedService is a group managed service account, DOMAIN\name$:
	// Windows fetches and rotates its password from the domain.
	ManagedService
)

func (k AccountKind) String() string {
	switch k {
	case BuiltIn:
		return "built-in account"
	case ManagedService:
		return "group managed service account"
	}
	return "virtual account"
}

// Account is the account service install registers: Name as the service
// manager stores it (ServiceStartName) and its kind.
type Account struct {
	Name string
	Kind AccountKind
}

// Errors of ParseAccount. Their text never repeats what was given.
var (
	// ErrAccountNeedsPassword: a user account, which would need its
	// password stored with the service.
	ErrAccountNeedsPassword = errors.New(`winsvc: a user account needs its password stored with the service, and service install stores none: use a group managed service account (DOMAIN\name$), the service's virtual account (the default) or NT AUTHORITY\NetworkService`)
	// ErrBadAccount: not an account name service install accepts.
	ErrBadAccount = errors.New("winsvc: not an account name")
)

// builtIns are the built-in accounts by lower-cased name, with the name
// the service manager stores.
var builtIns = map[string]string{
	"localsystem": "LocalSystem", `.\localsystem`: "LocalSystem", `nt authority\system`: "LocalSystem",
	`nt authority\localservice`: `NT AUTHORITY\LocalService`, `nt authority\local service`: `NT AUTHORITY\LocalService`,
	`nt authority\networkservice`: `NT AUTHORITY\NetworkService`, `nt authority\network service`: `NT AUTHORITY\NetworkService`,
}

// samInvalid are the characters a sAMAccountName may not contain.
const samInvalid = `"/\[]:;|=,+*?<>@`

// ParseAccount checks the account service install is given for the
// service name ("" is its virtual account) and returns it as the service
// manager stores it. A group managed service account is DOMAIN\name$
// (the NetBIOS domain name, the sAMAccountName with its $); a user
// account (no $) is refused: it would need a password stored with the
// service.
func ParseAccount(service, account string) (Account, error) {
	a := strings.TrimSpace(account)
	lower := strings.ToLower(a)
	if a == "" || lower == strings.ToLower(VirtualAccount(service)) {
		return Account{Name: VirtualAccount(service), Kind: Virtual}, nil
	}
	if n, ok := builtIns[lower]; ok {
		return Account{Name: n, Kind: BuiltIn}, nil
	}
	if strings.HasPrefix(lower, `nt service\`) {
		return Account{}, fmt.Errorf(`%w: a service runs only as its own virtual account, NT SERVICE\%s`, ErrBadAccount, service)
	}
	domain, name, found := strings.Cut(a, `\`)
	switch {
	case !found && strings.Contains(a, "@"):
		return Account{}, fmt.Errorf(`%w: give the account as DOMAIN\name$, not as name@domain`, ErrBadAccount)
	case !found && strings.HasSuffix(a, "$"):
		return Account{}, fmt.Errorf(`%w: a group managed service account is given with its domain: DOMAIN\name$`, ErrBadAccount)
	case !found || !strings.HasSuffix(name, "$"):
		return Account{}, ErrAccountNeedsPassword
	case domain == "" || domain == "." || strings.ContainsAny(domain, samInvalid+" "):
		return Account{}, fmt.Errorf(`%w: a group managed service account's domain is its NetBIOS name (DOMAIN\name$)`, ErrBadAccount)
	case len(name) < 2 || len(name) > 16 || strings.ContainsAny(name, samInvalid):
		return Account{}, fmt.Errorf(`%w: a group managed service account's name is its sAMAccountName, 1 to 15 characters and a $`, ErrBadAccount)
	}
	return Account{Name: a, Kind: ManagedService}, nil
}

// StartType is how a service starts.
type StartType int

// Start types.
const (
	StartDelayedAutomatic StartType = iota
	StartManual
)

// ServiceSettings are the settings Install gives the service entry
// (mgr.Config on Windows), worked out here so they can be tested
// everywhere.
type ServiceSettings struct {
	DisplayName, Description string
	// ServiceStartName is the account; the password is always empty (no
	// account service install accepts has one stored with the service).
	ServiceStartName string
	Start            StartType
	// Dependencies are services started first: Netlogon for a group
	// managed service account, whose password Windows fetches from a DC
	// at the service's logon.
	Dependencies []string
}

// Settings works out the service entry of the service name from o.
func Settings(name string, o InstallOptions) (ServiceSettings, error) {
	acct, err := ParseAccount(name, o.Account)
	if err != nil {
		return ServiceSettings{}, err
	}
	s := ServiceSettings{
		DisplayName: o.DisplayName, Description: o.Description,
		ServiceStartName: acct.Name, Start: StartDelayedAutomatic,
	}
	if o.Manual {
		s.Start = StartManual
	}
	if acct.Kind == ManagedService {
		s.Dependencies = []string{"Netlogon"}
	}
	return s, nil
}
