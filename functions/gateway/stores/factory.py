"""Pick the credential store and model cache for the settings: AWS on Lambda, local files/memory elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.stores.base import ModelCache, TokenStore

if TYPE_CHECKING:
    from gateway.settings import Settings


def build_stores(settings: Settings) -> tuple[TokenStore, ModelCache]:
    """(token store, model cache) for `settings`.

    KIRO_SECRET_ID set (the SAM template sets it): credentials in Secrets Manager, refresh lease in KIRO_STATE_TABLE.
    Otherwise the local credential sources (credential file, kiro-cli SQLite, env; `gateway.auth.sources`).
    KIRO_STATE_TABLE set: the model list is cached in DynamoDB and shared by every instance; otherwise in memory.
    Imports are lazy so a local run never loads boto3 and a Lambda run never touches the local sources.
    """
    store: TokenStore
    cache: ModelCache
    if settings.kiro_secret_id:
        from gateway.stores.aws import SecretsManagerTokenStore

        store = SecretsManagerTokenStore(settings.kiro_secret_id, settings.kiro_state_table)
    else:
        from gateway.auth.sources import build_token_store

        store = build_token_store(settings)
    if settings.kiro_state_table:
        from gateway.stores.aws import DynamoModelCache

        cache = DynamoModelCache(settings.kiro_state_table)
    else:
        from gateway.stores.local import InMemoryModelCache

        cache = InMemoryModelCache()
    return store, cache
