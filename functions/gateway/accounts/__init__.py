"""Kiro accounts: API keys and refresh-token logins, one or several, with selection, cooldowns and failover.

`config` reads and writes the account list (a JSON file locally, `accounts` in the secret on AWS); `health` keeps what
each account's errors taught us (cooldowns, exhausted quotas, suspensions), in memory or in DynamoDB; `pool` picks an
account per request and fails over before the first byte; `setup` builds the pool from the settings.
"""
