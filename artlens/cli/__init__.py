"""The `artlens` command: `main` builds the parser from a registry of commands, one module per command group,
and maps errors to exit codes. The only package allowed to import all the others; nothing imports it."""
