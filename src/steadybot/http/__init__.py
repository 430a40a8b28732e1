"""The HTTP front door (ASGI) and its signature check."""

from steadybot.http.app import ASGIApp, InteractionsApp
from steadybot.http.signature import SignatureVerifier

__all__ = ["ASGIApp", "InteractionsApp", "SignatureVerifier"]
