package stack

import (
	"context"
	"time"

	"github.com/adwriteback/adwriteback/integration/testdc"
)

// KeytabFile is the keytab of the DC's service account WithKerberos
// exports into Dir.
const KeytabFile = "svc-writeback.keytab"

// WithKerberos makes every connector of the stack bind with Kerberos as
// the shared service account (svc-writeback@<realm>), its keys exported
// from the DC into Dir as KeytabFile: bind.method kerberos, the
// principal, the keytab, the DC's KDC, and no DN nor password file in the
// configuration (see ConfigSpec.UseKerberos). Options after it (a
// connector's own) may still change the bind.
func WithKerberos() Option {
	return func(s *Setup) {
		s.AfterStart = append(s.AfterStart, func(e *Env) {
			kt := e.ExportKeytab(ServicePrincipal(e.DC), KeytabFile)
			e.setup.Connector = append([]ConnectorOption{KerberosBind(e.DC, ServicePrincipal(e.DC), kt)}, e.setup.Connector...)
		})
	}
}

// ServicePrincipal is the Kerberos principal of the DC's shared service
// account: svc-writeback@<realm>.
func ServicePrincipal(info *testdc.Info) string { return "svc-writeback@" + info.Realm }

// KerberosBind binds the connector to info's DC with Kerberos as
// principal with the keys in keytab (ConfigSpec.UseKerberos).
func KerberosBind(info *testdc.Info, principal, keytab string) ConnectorOption {
	return Configure(func(c *ConfigSpec) { c.UseKerberos(info, principal, keytab) })
}

// ExportKeytab exports principal's current keys from the DC into Dir as
// name (mode 0600, replacing the file at once: a rotation a running
// connector must pick up) and returns its path.
func (e *Env) ExportKeytab(principal, name string) string {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := e.Path(name)
	if err := testdc.ExportKeytabTo(ctx, e.DC, principal, p); err != nil {
		e.tb.Fatalf("stack: %v", err)
	}
	return p
}
