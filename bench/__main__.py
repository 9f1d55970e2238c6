"""`python -m bench` from the repository root: run the benchmark (options: --help)."""

from bench.cli import main

raise SystemExit(main())
