"""TLS for every server store: verifying contexts and what to say when a certificate is refused."""

from __future__ import annotations

import ssl

from migrator.endpoint import Endpoint
from migrator.errors import ConfigError

_NAME_MISMATCH = {62, 64}  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Return a verifying TLS context, trusting ``ca_file`` when the endpoint names one."""
    try:
        return ssl.create_default_context(cafile=endpoint.ca_file)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(
            f"cannot use the CA file {endpoint.ca_file} for {endpoint.account}: {reason}; "
            "give a PEM certificate file with ?ca_file=PATH"
        ) from None


def certificate_problem(error: ssl.SSLCertVerificationError, endpoint: Endpoint) -> str:
    """Return the sentence that says why the server's certificate was refused and what to do."""
    if error.verify_code in _NAME_MISMATCH:
        return (
            f"the certificate of {endpoint.host} was issued for another name ({error.verify_message}): "
            "connect to the server by the name in its certificate"
        )
    return (
        f"the certificate of {endpoint.host} is not trusted ({error.verify_message}): "
        "if you trust this server, give its CA certificate with ca_file (?ca_file=PATH in an endpoint URL)"
    )
