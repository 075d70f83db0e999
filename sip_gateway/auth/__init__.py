"""Digest authentication (RFC 3261 22, RFC 7616, RFC 8760): the math, the Authorization
header, stateless nonces, replay counts and the guard that puts them together."""

from sip_gateway.auth.authorization import DigestCredentials, parse_authorization
from sip_gateway.auth.digest import MD5, SHA256, Algorithm, ha1, response
from sip_gateway.auth.guard import Authenticated, DigestGuard
from sip_gateway.auth.nonce_counts import NonceCounts, NonceUse
from sip_gateway.auth.nonces import NonceCheck, NonceMint, NonceState
from sip_gateway.auth.source import CredentialSource, UserCredentials

__all__ = ["MD5", "SHA256", "Algorithm", "Authenticated", "CredentialSource",
           "DigestCredentials", "DigestGuard", "NonceCheck", "NonceCounts", "NonceMint",
           "NonceState", "NonceUse", "UserCredentials", "ha1", "parse_authorization",
           "response"]
