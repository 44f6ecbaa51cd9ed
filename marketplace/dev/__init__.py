"""Development only: the embedded stack of `make run` (local SeaweedFS and localstripe
supervised as child processes), the demo data it seeds, and the servers tests start."""
