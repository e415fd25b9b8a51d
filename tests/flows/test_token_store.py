"""The Prefect Secret block as the store of a rotated Salesforce refresh token (issue 25)."""

from __future__ import annotations

import pytest

from abm_sla.crm.mapping import TokenStoreConfig
from abm_sla.crm.tokens import open_token_store, register_token_store
from tasks.common import PrefectSecretTokenStore, load_app_config_with_secrets

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def test_a_prefect_secret_block_holds_the_newest_refresh_token():
    load_app_config_with_secrets(None)  # installs the prefect-secret kind, as the flows and the CLI do
    try:
        store = open_token_store(TokenStoreConfig(kind="prefect-secret", block="sf-refresh-token-test"))
        assert isinstance(store, PrefectSecretTokenStore)
        assert store.load() is None  # no block yet: SF_REFRESH_TOKEN seeds it
        store.save("rt-rotated-1")
        store.save("rt-rotated-2")  # overwritten, not refused
        assert store.load() == "rt-rotated-2"
    finally:
        register_token_store("prefect-secret", None)
