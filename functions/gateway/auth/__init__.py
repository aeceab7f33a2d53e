"""Kiro credentials: where they come from (`sources`), how they are refreshed (`refresh`), and the per-process
manager that hands out access tokens (`manager`). Token persistence lives in `gateway.stores`."""

from gateway.auth.manager import AuthManager
from gateway.auth.refresh import RefreshError, TokenRefresher, refresh_urls
from gateway.stores.sources import build_token_store

__all__ = ["AuthManager", "RefreshError", "TokenRefresher", "build_token_store", "refresh_urls"]
