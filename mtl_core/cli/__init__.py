"""The command line: `python -m mtl_core ...` (main), `users ...`, `backup`/`restore`."""
