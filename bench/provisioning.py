"""Benchmark: how long `organization_create` takes, and whether that grows with the organization count.

Signup latency is the time to provision an organization. In production Celery keeps the warm pool
full, so provisioning is "rename a pre-migrated pool schema + insert one row", which should cost
the same for the 10th organization as for the 10,000th. This script measures exactly that:

* warm path: provisions N organizations in batches; before each batch the pool is refilled
  (untimed) so every timed `organization_create` takes a pool schema. It reports p50/p95 wall time
  over the first 10 organizations ("at 10"), over the last 10% ("at N"), their p95 ratio (a
  ratio well above 1 means provisioning degrades as tenants accumulate), and a per-decile table.
* fallback path: ~10 more organizations with an empty pool, i.e. cloning the template schema,
  which is what signups pay when the pool runs dry.

It never touches the database named in DATABASE_URL: it creates a throwaway database
`scriptorium_bench_provisioning_<pid>` on the same server, migrates it with `migrate_schemas`, and drops it at
the end, also on error or Ctrl-C.

Usage: python bench/provisioning.py [--orgs N] [--database-url URL]   (or `make bench`)
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from throwaway import throwaway_database

BASE_DIR = Path(__file__).resolve().parent.parent
BATCH = 10  # organizations per refill, like the default TENANT_WARM_POOL_SIZE
FALLBACK_ORGS = 10



def pcts(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in ms."""
    ms = [s * 1000 for s in samples]
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p95


def run(n_orgs: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from tenants import services
    from tenants.models import WarmSchema
    from tenants.tasks import refill_warm_pool

    call_command("migrate_schemas", interactive=False, verbosity=0)
    # Process warm-up: the first Celery publish sets up the broker connection (~50 ms, once per
    # process); left in, it would land in organization #1 and dominate the "at 10" p95.
    refill_warm_pool.delay()

    def create(i: int) -> float:
        start = time.perf_counter()
        services.organization_create(title=f"Bench Org {i}", slug=f"bench-{i}")
        return time.perf_counter() - start

    warm: list[float] = []
    refills: list[float] = []  # seconds per pool schema cloned, per batch (context, not the measure)
    while len(warm) < n_orgs:
        batch = min(BATCH, n_orgs - len(warm))
        connection.set_schema_to_public()
        start = time.perf_counter()
        services.warm_pool_refill(target_size=batch)  # untimed, as Celery would do between signups
        refills.append((time.perf_counter() - start) / batch)
        warm += [create(len(warm) + k + 1) for k in range(batch)]
        assert not WarmSchema.objects.exists(), "pool not drained: some organizations did not take a pool schema"

    fallback = [create(n_orgs + k + 1) for k in range(FALLBACK_ORGS)]  # the pool stays empty: clones

    def row(label: str, samples: list[float]) -> float:
        p50, p95 = pcts(samples)
        print(f"{label:<30}{p50:>9.1f}{p95:>9.1f}{max(samples) * 1000:>9.1f}")
        return p95

    step = max(1, n_orgs // 10)
    print(f"\n{'organizations created':<30}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for lo in range(0, n_orgs, step):
        row(f"warm pool  #{lo + 1}-{min(lo + step, n_orgs)}", warm[lo:lo + step])
    print("-" * 57)
    p95_10 = row("warm pool  at 10", warm[:10])
    p95_n = row(f"warm pool  at {n_orgs}", warm[-step:])
    row(f"empty pool (clone) #{n_orgs + 1}-{n_orgs + FALLBACK_ORGS}", fallback)
    print(f"(pool refill, untimed above: {refills[0] * 1000:.0f} ms per cloned schema in the first batch, "
          f"{refills[-1] * 1000:.0f} ms in the last)")
    print(f"\nprovisioning p95 at {n_orgs} orgs: {p95_n:.1f} ms (at 10: {p95_10:.1f} ms, ratio {p95_n / p95_10:.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=200, help="organizations to provision (default 200)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="server to use (default: $DATABASE_URL); only a throwaway database is touched")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("set DATABASE_URL or pass --database-url")
    if args.orgs < 10:
        parser.error("--orgs must be at least 10")

    try:
        with throwaway_database(database_url=args.database_url, what="provisioning") as name:
            print(f"benchmark database {name}; provisioning {args.orgs} organizations (+{FALLBACK_ORGS} clones)")
            run(args.orgs)
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
