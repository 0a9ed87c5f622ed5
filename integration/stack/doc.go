// Package stack is the one integration harness: every suite (e2e,
// faults, hostile, bench) and the demo build their world with it, in the
// manner of tailscale's tstest/integration NewTestEnv.
//
//	env := stack.New(t, opts...)          // DC, emulator + queues, keys, secrets
//	a := env.Start("a", connectorOpts...) // a connector, in process or the binary
//	res := env.Sender().Do(req)            // the sender SDK over the real Service Bus SDK
//
// The map:
//   - New (env.go) builds an Env from a Setup that Options edit: the shared
//     test DC (testdc.Ensure) or WithDC, an emulator of its own (WithTier),
//     the command and reply queues (WithCommandQueue, WithReplyQueue,
//     AddQueue), fresh keys (or WithKeyDir: `adwriteback keygen`'s) and
//     the secret files. ForEveryConnector and ForEverySender give every
//     connector or sender of the stack the same options; Setup.AfterStart
//     hooks run once the DC, emulator and queues are up, before the
//     secret files are written, and may change Env.ConnectionString. A
//     new capability (TLS on the emulator, WebSockets, an HTTP CONNECT
//     proxy, a token issuer) is one more Option editing Setup (emulator
//     options, a hook that starts a server, connector and sender options
//     that point at it), and AddSurface if it produces text a password
//     could leak into.
//   - Entra (entra.go): WithEntra starts a token issuer (integration/entra)
//     before the emulator, which then checks Entra ID tokens as Service
//     Bus does (signature, iss, aud, exp, roles per queue); Env.Entra
//     gives a connector its authority host, tenant, client ids, secret,
//     certificate and federated token files, CA file and Arc environment.
//   - Connector (connector.go): Env.Connector or Env.Start by name, with
//     ConnectorOptions (Configure the ConfigSpec, Binary, Wrap, ProcessEnv,
//     Deps, ClockAhead, DiscardLogs). The same API runs the connector in
//     this process (app.Build and Run) or as the built binary: Start,
//     Stop (graceful), Kill (SIGKILL, binary), WaitExit, and Start again
//     on the same journal; several connectors of one stack share its
//     queue. Each has its own config, journal, audit log and health
//     listener; Logs, Audit, AuditRecords, Readyz, WaitReady (ready.go).
//     Deps.Clock is set in one place, Connector.deps.
//   - Binaries (binaries.go): the connector binary built once per test
//     binary (RunWithBinaries in TestMain) or program, CGO_ENABLED=0, the
//     Production and FaultInject variants.
//   - Senders: Env.Sender (sender.go; MaxPending, TTL,
//     SenderConfig) with Do; Env.SendCLI runs `adwriteback send` in
//     process, and SendArgs/SendEnv give a program its arguments
//     (cli.go); Env.Raw (raw.go) puts any body on the queue and awaits a
//     result or a dead letter.
//   - The leak scan (scan.go): at the end of the test, every password the
//     test registered (Env.Secret, SecretBytes) is looked for in every
//     connector's log and audit log, the results, CLI output and pages
//     the test recorded (Env.Results), every message of every queue of
//     the stack (bodies, dead-letter reasons and descriptions), each
//     connector's /metrics, /status and /readyz (read before it stops),
//     and the raw results a RawClient received.
//   - Artifacts (artifacts.go): when the test fails, each connector's log,
//     audit log and config, the emulator's log and the results are kept
//     in integration/artifacts/<TestName>/.
//   - Network faults (netfault.go): Proxy in front of a DC (Down/Up,
//     SetUntrusted with an UntrustedCert), HangingListener, FreeAddr.
//   - The edge (tls.go, proxy.go): WithEmulatorTLS makes the emulator
//     listen like Azure too (AMQPS on 5671, WebSockets on 443 at
//     /$servicebus/websocket, on a loopback address of the stack's own)
//     with a certificate for Namespace from the stack's one CA
//     (integration/testca: Env.CA, CAFile, IssueCert for other servers;
//     WithEntra's issuer has its HTTPS certificate from it too); HostsFile and HostsWrap give
//     a process that namespace as DNS would. WithProxy starts tinyproxy
//     (Env.Proxy: URL, User, PasswordFile, IdleTimeout, Down/Up) with
//     Basic auth, CONNECT only to the emulator's WebSocket port, and its
//     password in the leak scan; StartProxy runs one outside a stack.
//     Env.ViaEdge(auth) (edge.go) is the connector option that takes a
//     connector there in one call: transport websockets, the proxy's
//     URL, user and password file, queue.ca_file = CAFile, and the
//     namespace's connection string (EdgeSAS) or an Entra credential of
//     Env.Entra (EdgeClientSecret, EdgeClientCertificate,
//     EdgeWorkloadIdentity; EdgeManagedIdentity as the binary only, the
//     Arc variables in its ProcessEnv) with queue.authority_host; in
//     process through queue.custom_endpoint, the binary under HostsWrap.
//   - TB (tb.go) is what the harness needs of a test; Program is one for
//     programs (cmd/demo, cmd/bench): Fatalf ends Do, Close runs the
//     cleanups.
//   - Kerberos (kerberos.go): WithKerberos binds every connector with
//     Kerberos as svc-writeback, its keys exported from the DC into Dir
//     (KeytabFile), the DC's KDC, no DN nor password in the config;
//     KerberosBind (ConfigSpec.UseKerberos) does so for one connector and
//     any principal and keytab, Env.ExportKeytab exports (again, over the
//     same file: a rotation) into Dir.
//   - ConfigSpec (config.go) writes the connector's YAML from typed
//     fields; WriteKeys and WriteSecrets (files.go) the files it points at.
//
// What a suite breaks and what it checks stay with the suite.
package stack
