"""papers service: HTTP API, web UI and the `papers` command line. Reads what indexer builds."""
