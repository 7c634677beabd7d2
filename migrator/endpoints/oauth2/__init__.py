"""OAuth2 for IMAP and POP3 logins: providers, the flows that get a first grant, the refresh token kept between runs.

``providers`` says where a provider's endpoints are; ``flows`` runs the device-code flow (RFC 8628,
Microsoft) or the loopback authorization-code flow with PKCE (RFC 7636, Google) that `migrator login`
starts; ``grants`` keeps the refresh token, mode 0600, under the state directory and hands out access
tokens, refreshed before they expire. The client id is always the user's own: nothing secret is shipped.
"""
