"""build_stores picks AWS stores when the SAM template's variables are set, local ones otherwise."""

from __future__ import annotations

import json

from gateway.settings import Settings
from gateway.stores.dynamo_models import DynamoModelCache
from gateway.stores.factory import build_stores
from gateway.stores.local import InMemoryModelCache
from gateway.stores.secrets_manager import SecretsManagerTokenStore


def test_lambda_settings_give_the_aws_stores():
    settings = Settings(kiro_secret_id="arn:aws:secretsmanager:eu-west-1:123456789012:secret:kiro-AbCdEf",
                        kiro_state_table="kiro-state")
    store, cache = build_stores(settings)
    assert isinstance(store, SecretsManagerTokenStore) and store.table_name == "kiro-state"
    assert isinstance(cache, DynamoModelCache) and cache.table_name == "kiro-state"
    assert "Secrets Manager" in store.describe()


def test_local_settings_give_the_local_stores(tmp_path):
    creds = tmp_path / "kiro-auth-token.json"
    creds.write_text(json.dumps({"refreshToken": "r" * 40, "accessToken": "", "region": "us-east-1"}))
    store, cache = build_stores(Settings(kiro_creds_file=str(creds)))
    assert not isinstance(store, SecretsManagerTokenStore)
    assert str(creds) in store.describe()
    assert isinstance(cache, InMemoryModelCache)


def test_secret_without_table_still_works_locally_cached():
    store, cache = build_stores(Settings(kiro_secret_id="kiro-secret"))
    assert isinstance(store, SecretsManagerTokenStore) and store.table_name == ""
    assert isinstance(cache, InMemoryModelCache)
