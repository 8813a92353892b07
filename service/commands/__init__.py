"""`papers` subcommands, one module per area; service/cli.py registers them."""
