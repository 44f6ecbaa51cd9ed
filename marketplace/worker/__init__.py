"""Workers: run the jobs of marketplace.core.jobs from the queue, and the schedules that
enqueue the marketplace's own work (expiries, asset checks, the sweep). `marketplace worker`
runs one; `make run` starts one beside the API."""
