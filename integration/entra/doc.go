// Package entra is the test world's Microsoft identity platform: a token
// issuer for one tenant that the unmodified azidentity credentials talk
// to, and whose tokens the Service Bus emulator (integration/sbemu)
// verifies as Service Bus verifies Entra ID tokens.
//
//	iss := entra.Start(t, entra.Options{Clients: []entra.Client{
//		{Name: "connector", Roles: []string{"Listen:commands", "Send:replies"}},
//	}})
//	c := iss.Client("connector")
//	cred, _ := azidentity.NewClientSecretCredential(iss.TenantID(), c.ID, c.Secret,
//		&azidentity.ClientSecretCredentialOptions{ClientOptions: iss.ClientOptions(),
//			DisableInstanceDiscovery: true})
//
// What it serves, over HTTPS with a certificate from its own test CA or
// the one in Options.CA (integration/testca; CA, CAFile, CertPool):
//   - OIDC discovery, /{tenant}/v2.0/.well-known/openid-configuration,
//     which MSAL reads first when ClientOptions.Cloud's
//     ActiveDirectoryAuthorityHost is AuthorityHost and instance
//     discovery is disabled (MSAL asks login.microsoftonline.com about
//     any other host otherwise).
//   - The token endpoint, /{tenant}/oauth2/v2.0/token, client_credentials
//     grant, with (i) a client secret, (ii) a client certificate
//     assertion (a JWT signed with the registered certificate's key, its
//     x5t#S256 or x5t header naming that certificate, aud the token
//     endpoint, iss and sub the client id), or (iii) a federated
//     assertion (workload identity: the content of Client.TokenFile, a
//     JWT the issuer's own "federation" key signed, iss FederationIssuer,
//     aud api://AzureADTokenExchange, sub the client's Subject). Refusals
//     have Entra's shape (error, error_description with the AADSTS code,
//     error_codes), which azidentity returns as AuthenticationFailedError.
//   - The JWKS, /{tenant}/discovery/v2.0/keys, also written to JWKSFile
//     for the emulator.
//   - (iv) The Azure Arc managed identity endpoint, over plain HTTP on
//     loopback as the Arc agent serves it (ArcEnv gives IDENTITY_ENDPOINT
//     and IMDS_ENDPOINT): a request without Authorization is answered 401
//     with `WWW-Authenticate: Basic realm=<key file>`; the key file is
//     written into ArcKeyDir (azidentity accepts no other directory on
//     Linux: /var/opt/azcmagent/tokens, with the extension .key) and
//     removed once used and at cleanup; the retry carrying
//     `Authorization: Basic <file content>` gets a token for the client
//     marked ManagedIdentity.
//
// Access tokens are RS256 JWTs with iss (Issuer), aud
// (https://servicebus.azure.net unless Client.Audience says otherwise),
// iat, nbf, exp, tid, oid, sub, appid, azp, and roles. Roles are how the
// emulator decides what a token may do; the names are:
//
//	Listen, Send, Manage           namespace-wide
//	Listen:<queue>, Send:<queue>   one queue (and its dead-letter queue)
//
// Manage implies Listen and Send, as a Service Bus Data Owner has both.
// Listen is what the Azure Service Bus Data Receiver role grants, Send
// what Data Sender grants: Service Bus evaluates RBAC assignments on the
// namespace or the entity; the emulator reads the same decision from the
// token.
//
// A test shapes refusals with Client (SecretExpired, Audience,
// ExpiredTokens, Roles) or while running (SetSecretExpired, SetRoles),
// and Mint signs a token without a request (to test the emulator's
// checks on their own).
package entra
