"""`python -m artlens ...` is the `artlens` command."""
import sys

from artlens.cli.main import main

sys.exit(main())
