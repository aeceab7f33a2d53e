"""The upstream side: the Kiro HTTP client (hosts, headers, retry policy), the streaming pipeline (commit boundary,
first-token retry, keep-alives) with its reader pump, and the classification of upstream failures."""
