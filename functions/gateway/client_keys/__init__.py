"""Named client keys: who may spend this gateway's Kiro credits, and how fast.

* `records`: a key record (name, keyed hash, fingerprint, expiry, enabled, limits) and the key ring that finds the
  record of a presented key in constant time;
* `sources`: where the ring lives (`KIRO_CLIENT_KEYS_FILE` locally, the secret's `clientKeys` on AWS), re-read at
  most every few seconds so a revoked key stops working without a restart;
* `limiter`, `dynamo_limiter`: fixed windows and leased concurrency slots, in memory or in the DynamoDB state table;
* `source_address`: the caller's address, trusting a forwarded-for header only where a setting or the Lambda Web
  Adapter says so;
* `gate`: the per-request check (failed-auth throttle, key lookup, rpm, budget, concurrency) and the release of the
  concurrency slot when the response ends;
* `budget`: the daily/monthly credit budget check against the per-key usage counters (refused with 429).

`PROXY_API_KEY` (or the secret's `proxyApiKey`) stays valid as the unlimited key named "default".
"""

from __future__ import annotations

DEFAULT_KEY_NAME = "default"
