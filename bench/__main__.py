"""`python -m bench` from the repository root: run the benchmark (options: --help)."""

from bench.harness import main

raise SystemExit(main())
