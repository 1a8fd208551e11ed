"""Accounts: adding, verifying and signing in again, with credentials only in the keyring.

Owns the accounts service (``service``: verify before saving, enable, remove), the OAuth 2 desktop flow with
PKCE and a loopback listener (``oauth``) and Discourse's User API key sign-in (``discourse_auth``).

May import: ``console.channels``, ``console.ports`` and the storage repositories. Independent of replies,
surveys and shifts (import-linter keeps it so).
"""
