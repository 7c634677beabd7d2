"""What to tell the user when a token endpoint refuses: the provider's words, then what to do about them."""

from __future__ import annotations

from migrator.endpoints.oauth2.http import TokenEndpointError

# Microsoft Entra's error codes (AADSTS…) that users meet, and what fixes each.
_MICROSOFT = {
    "AADSTS65001": "an administrator of the tenant must consent to the client's IMAP.AccessAsUser.All and "
                   "POP.AccessAsUser.All permissions (Entra admin center: App registrations, API permissions, "
                   "Grant admin consent)",
    "AADSTS7000218": "the app registration is not a public client: in Entra, under Authentication, set "
                     "'Allow public client flows' to Yes (or give its client_secret)",
    "AADSTS700016": "no such application in this tenant: check client_id, and tenant (organizations or your "
                    "tenant id instead of common for a single-tenant app)",
    "AADSTS50076": "the tenant requires multi-factor authentication: run `migrator login` again and complete it",
    "AADSTS53003": "a conditional access policy of the tenant blocks this sign-in: ask its administrator",
}
_STANDARD = {
    "invalid_client": "check client_id (and client_secret, for a client that has one)",
    "unauthorized_client": "this client may not use this flow: for Microsoft allow public client flows in "
                           "the app registration; for Google create a Desktop app client",
    "invalid_scope": "the client may not ask for these scopes: check scopes, and the API permissions of the client",
    "access_denied": "the login was declined: run `migrator login` again and approve it",
    "expired_token": "the code was not entered in time: run `migrator login` again",
}


def advice(refused: TokenEndpointError, relogin: str) -> str:
    """Return what to do about ``refused``; ``relogin`` is the `migrator login …` command for this account."""
    words = refused.description
    for code, fix in _MICROSOFT.items():
        if code in words:
            return fix
    if refused.error == "invalid_grant":
        return (f"the refresh token has expired or was revoked: run `{relogin}` again (a Google project in "
                "testing mode issues refresh tokens that expire after 7 days: publish it to keep them)")
    return _STANDARD.get(refused.error, f"run `{relogin}` again, or check the client's registration")


def refusal_sentence(refused: TokenEndpointError, account: str, relogin: str) -> str:
    """Return one sentence: who was refused, the provider's error and description, and the fix."""
    said = refused.error + (f" ({refused.description.rstrip('.')})" if refused.description else "")
    fix = advice(refused, relogin)
    return f"the token endpoint refused {account}: {said}. {fix[0].upper()}{fix[1:]}"
