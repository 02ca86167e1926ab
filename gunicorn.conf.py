"""Production defaults for `gunicorn jieyou.wsgi:app` (override with GUNICORN_CMD_ARGS)."""
import multiprocessing
import os

from infra.config import jobs_refusal  # gunicorn puts its working directory on sys.path first

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
# Connections one worker holds at once (gthread). Behind a balancer that keeps connections alive,
# cap it near the balancer's pool / workers: uncapped, the worker quickest to accept can take every
# kept-alive connection while the others idle (bench/redemption_bench.py measured exactly that).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", 1000))
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# The path without its query string (%(U)s, not the request line %(r)s), and no referrer: a query
# holds what staff searched for (`/admin/accounts?q=` a phone number or a name), and a page's
# address may too. Kept: client, time, method, path, status, size, duration (s), user agent.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)s "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):  # noqa: ANN001, ANN201  (gunicorn's hook, in the master before any worker)
    """Refuse a set-up that would seem to work: gunicorn is the production entry.

    - No DATABASE_URL: the embedded SQLite file in the instance folder, empty and unmigrated, and
      every request a 503 "busy" (and /healthz a 503 naming the missing migrations).
    - Several workers with the rate limits in memory (RATELIMIT_STORAGE_URI unset): each worker
      counts on its own, so sign-in guesses and the counter's code guesses get the budget once per
      worker (17 times on 8 cores). Set it to redis://…; naming memory:// on purpose (one machine,
      limits per worker accepted, as the benchmark does) is allowed, with a warning.
    - No CELERY_BROKER_URL: jobs inside requests and the nightly schedule in no process
      (`infra.config.jobs_refusal`); JOBS_IN_PROCESS=1 says that is intended (the benchmark), with a warning."""
    problems = []
    if not os.environ.get("DATABASE_URL"):
        problems.append("DATABASE_URL is not set (gunicorn serves production: postgresql://…).")
    storage = os.environ.get("RATELIMIT_STORAGE_URI", "")
    if server.cfg.workers > 1 and not storage:
        problems.append(f"RATELIMIT_STORAGE_URI is not set and {server.cfg.workers} workers would each keep their "
                        "own rate limits (sign-in and code guesses allowed once per worker): set it to redis://….")
    elif server.cfg.workers > 1 and storage.startswith("memory"):
        server.log.warning("RATELIMIT_STORAGE_URI=%s: each of the %d workers keeps its own rate limits",
                           storage, server.cfg.workers)
    refusal = jobs_refusal(os.environ)
    if refusal:
        problems.append(refusal)
    elif not os.environ.get("CELERY_BROKER_URL"):
        server.log.warning("JOBS_IN_PROCESS is set and CELERY_BROKER_URL is not: jobs run inside requests and the "
                           "nightly schedule (awards after the public notice, hold expiry, digest) runs nowhere")
    if problems:
        raise RuntimeError(" ".join(problems))  # gunicorn prints it and exits 1
