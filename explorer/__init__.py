"""`artlens serve`: a web explorer over a store (a map, search, a painting's page, probe results) and the JSON
API the page uses. Read-only: every route reads the store through `artlens.store` (the one write: a table's
2-D map, computed once and kept through the store's own API). `create_app` lives in `artlens.explorer.app`."""
