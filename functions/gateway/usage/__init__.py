"""Credits and usage: the gateway's own counters (per day, model and client key), Kiro's plan limits, the report
behind `GET /v1/usage`, `kiro-gateway usage` and the `/usage` page."""
