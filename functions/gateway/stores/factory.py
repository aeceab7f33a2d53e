"""Pick the credential store and model cache for the settings: AWS on Lambda, local files/memory elsewhere.

Imports are lazy so a local run never loads boto3 and a Lambda run never touches the local sources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.stores.base import ModelCache, TokenStore

if TYPE_CHECKING:
    from gateway.settings import Settings


def build_token_store(settings: Settings) -> TokenStore:
    """KIRO_SECRET_ID set (the SAM template sets it): credentials in Secrets Manager with a refresh lease in
    KIRO_STATE_TABLE. Otherwise the local sources (`gateway.stores.sources`); raises CredentialsNotFound if none."""
    if settings.aws.kiro_secret_id:
        # lazy: only the backend in use loads (a local run never loads boto3, a Lambda never the local sources)
        from gateway.stores.secrets_manager import SecretsManagerTokenStore

        return SecretsManagerTokenStore(settings.aws.kiro_secret_id, settings.aws.kiro_state_table)
    # lazy: only the backend in use loads (a local run never loads boto3, a Lambda never the local sources)
    from gateway.stores.sources import build_token_store as build_local_token_store

    return build_local_token_store(settings)


def build_model_cache(settings: Settings) -> ModelCache:
    """KIRO_STATE_TABLE set: the model list is cached in DynamoDB and shared by every instance; else in memory."""
    if settings.aws.kiro_state_table:
        # lazy: only the backend in use loads (a local run never loads boto3, a Lambda never the local sources)
        from gateway.stores.dynamo_models import DynamoModelCache

        return DynamoModelCache(settings.aws.kiro_state_table)
    # lazy: only the backend in use loads (a local run never loads boto3, a Lambda never the local sources)
    from gateway.stores.local import InMemoryModelCache

    return InMemoryModelCache()


def build_stores(settings: Settings) -> tuple[TokenStore, ModelCache]:
    """(token store, model cache) for `settings`."""
    return build_token_store(settings), build_model_cache(settings)
