"""The embedded scheduler (``service.scheduler``): the jobs of ``[schedule]`` on the host's event
loop (the TUI, or ``goconsole scheduler run``), run only by the one leader per cluster, each run
recorded in ``job_runs``.

Modules: triggers (schedule expressions as APScheduler triggers, the fire times a gap missed),
jobs (what each job does), history (``job_runs`` rows), leader (the session advisory lock on a
dedicated connection), execute (one run: job lock, record, run), service (the scheduler itself).
"""
