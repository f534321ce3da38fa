"""Speed and memory of the association scans at TCGA-BRCA size, side by side with FaST-LMM.

A synthetic cohort of N = 1,090 samples x G = 20,000 genes
(:func:`exprlmm.datasets.confounded_cohort`, seed 0) is written once to a temporary folder;
then every method runs in a *fresh* Python process that loads it, so that each peak RSS is
that method's own (interpreter + data + working memory). Methods:

- ``slr``        :func:`exprlmm.assoc.slr_scan` (all genes, OLS t);
- ``kinship``    :func:`exprlmm.kinship.eigensystem_from_expression` (``K = ZZᵀ/G`` + ``eigh``;
  shown for reference, it is included in both LMM rows);
- ``lmm-null``   :func:`exprlmm.assoc.lmm_scan`, ``delta="null"`` (REML), K from all genes;
- ``lmm-refit``  :func:`exprlmm.assoc.lmm_scan`, ``delta="refit"`` (each gene's REML optimum);
- ``lmm-null-scan``, ``lmm-refit-scan``  the same scans given the eigensystem (computed in
  the worker before the clock starts): the cost per extra trait when ``K`` is reused;
- ``fastlmm``    ``fastlmm.association.single_snp`` with the same ``K`` (built with numpy, time
  included) as a ``KernelData`` and the genes as a continuous ``SnpData``,
  ``leave_out_one_chrom=False`` -- the same model as ``lmm-null``.

Each method runs with 1 and with 2 BLAS threads (``threadpoolctl`` in the worker, plus the
``*_NUM_THREADS`` variables in its environment). Wall time is the best of ``--repeat`` calls
inside the worker (load and imports excluded), shown with the CPU that *other* processes
used during that call (``/proc/stat``; on a shared machine, rows with > 0.25 cores are
pessimistic). Peak RSS is the worker's high-water mark (``VmHWM``; the cohort is written by
a separate process, so the driver stays small). The ``lmm-null`` and ``fastlmm`` p-values
are compared (max |Δ -log10 p|) as a check that both fit the same model.

Usage::

    python benchmarks/bench_assoc.py             # full size; FaST-LMM if importable
    python benchmarks/bench_assoc.py --quick     # N=200, G=2,000: smoke run
    python benchmarks/bench_assoc.py --json benchmarks/out/bench.json

FaST-LMM is optional (``pip install fastlmm six psutil``, the ``[bench]`` extra); without it
its rows say "not installed". Run on an otherwise idle machine: the load is printed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = (
    "slr",
    "kinship",
    "lmm-null",
    "lmm-refit",
    "lmm-null-scan",
    "lmm-refit-scan",
    "fastlmm",
)
THREAD_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
TARGETS = {"lmm-null": 1.5, "lmm-refit": 3.0}  # seconds, on the 2-core reference machine
RSS_TARGET_MB = 1500.0


# ---------------------------------------------------------------------------------------
# worker: one method, in a fresh process
def _proc_status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB; NaN if unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _peak_rss_mb() -> float:
    """Peak RSS of this process in MB.

    Linux: ``VmHWM``, the high-water mark of this process image. Not ``ru_maxrss``: the
    kernel carries the parent's RSS at ``fork`` through ``exec`` into it, so every worker
    would report at least the driver's size. Elsewhere: ``ru_maxrss`` (KiB, bytes on macOS).
    """
    hwm = _proc_status_mb("VmHWM")
    if hwm == hwm:  # not NaN
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _fastlmm_runner(expression: np.ndarray, trait: np.ndarray):
    """Return a zero-argument callable running FaST-LMM ``single_snp`` (same K as exprlmm)."""
    from fastlmm.association import single_snp
    from pysnptools.kernelreader import KernelData
    from pysnptools.snpreader import SnpData

    n, g = expression.shape
    iid = np.array([["0", f"s{i}"] for i in range(n)])
    sid = np.array([f"g{j}" for j in range(g)])
    pos = np.zeros((g, 3))

    def run() -> np.ndarray:
        z = (expression - expression.mean(axis=0)) / expression.std(axis=0)
        kernel = KernelData(iid=iid, val=z @ z.T / g)
        del z
        result = single_snp(
            SnpData(iid=iid, sid=sid, val=expression, pos=pos),
            SnpData(iid=iid, sid=np.array(["trait"]), val=trait[:, None]),
            K0=kernel,
            leave_out_one_chrom=False,
            count_A1=False,
        )
        return result.sort_values("sid_index")["PValue"].to_numpy()

    return run


def worker(method: str, data: Path, threads: int, repeat: int) -> dict:
    """Run ``method`` ``repeat`` times on the cohort in ``data``; return timings and RSS."""
    from threadpoolctl import threadpool_limits

    expression = np.load(data / "expression.npy")
    trait = np.load(data / "trait.npy")
    if method == "fastlmm":
        try:
            run = _fastlmm_runner(expression, trait)
        except ImportError as err:
            return {"method": method, "threads": threads, "status": f"not installed ({err.name})"}
    else:
        from exprlmm.assoc import lmm_scan, slr_scan
        from exprlmm.kinship import eigensystem_from_expression

        eig = eigensystem_from_expression(expression) if method.endswith("-scan") else None
        calls = {
            "slr": lambda: slr_scan(expression, trait)["pvalue"].to_numpy(),
            "kinship": lambda: eigensystem_from_expression(expression),
            "lmm-null": lambda: lmm_scan(expression, trait)["pvalue"].to_numpy(),
            "lmm-refit": lambda: lmm_scan(expression, trait, delta="refit")["pvalue"].to_numpy(),
            "lmm-null-scan": lambda: lmm_scan(expression, trait, eigensystem=eig),
            "lmm-refit-scan": lambda: lmm_scan(expression, trait, eigensystem=eig, delta="refit"),
        }
        run = calls[method]
    rss_loaded = _proc_status_mb("VmRSS")
    seconds, others = [], []
    with threadpool_limits(limits=threads):
        for _ in range(repeat):
            busy0, own0 = _busy_cpu_seconds(), _self_cpu_seconds()
            t0 = time.perf_counter()
            result = run()
            seconds.append(time.perf_counter() - t0)
            busy = _busy_cpu_seconds() - busy0 - (_self_cpu_seconds() - own0)
            others.append(max(0.0, busy / seconds[-1]))
    best = int(np.argmin(seconds))
    if method in ("lmm-null", "fastlmm"):
        np.save(data / f"pvalues-{method}-{threads}.npy", result)
    return {
        "method": method,
        "threads": threads,
        "status": "ok",
        "seconds": seconds,
        "best_seconds": seconds[best],
        "others_cores": others,
        "best_others_cores": others[best],
        "rss_loaded_mb": rss_loaded,
        "peak_rss_mb": _peak_rss_mb(),
    }


# ---------------------------------------------------------------------------------------
# driver
def _run_worker(method: str, data: Path, threads: int, repeat: int, timeout: float) -> dict:
    env = dict(os.environ)
    env.update({var: str(threads) for var in THREAD_VARS})
    cmd = [sys.executable, __file__, "--worker", method, "--data", str(data)]
    cmd += ["--threads", str(threads), "--repeat", str(repeat)]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"method": method, "threads": threads, "status": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no message"]
        return {"method": method, "threads": threads, "status": f"failed: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _busy_cpu_seconds() -> float:
    """CPU seconds spent by all processes on this machine so far (``/proc/stat``; NaN elsewhere)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _self_cpu_seconds() -> float:
    """CPU seconds used by this process (all its threads)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _own_cpu_seconds() -> float:
    """CPU seconds used by this driver and its (finished) workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _write_cohort(folder: Path, n_samples: int, n_genes: int, seed: int) -> None:
    from exprlmm.datasets import confounded_cohort

    cohort = confounded_cohort(seed, n_samples=n_samples, n_genes=n_genes)
    np.save(folder / "expression.npy", np.ascontiguousarray(cohort.expression.to_numpy()))
    np.save(folder / "trait.npy", cohort.trait.to_numpy())


def _format_table(rows: list[dict], *, full_size: bool) -> str:
    fast = {r["threads"]: r for r in rows if r["method"] == "fastlmm" and r["status"] == "ok"}
    lines = [
        "| method | BLAS threads | wall time (s) | peak RSS (MB) | time / FaST-LMM "
        "| RSS / FaST-LMM | other load (cores) | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['method']} | {r['threads']} | {r['status']} | | | | | |")
            continue
        ref = fast.get(r["threads"])
        time_ratio = f"{r['best_seconds'] / ref['best_seconds']:.2f}" if ref else "–"
        rss_ratio = f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}" if ref else "–"
        target = ""
        if full_size and r["method"] in TARGETS:
            ok = r["best_seconds"] <= TARGETS[r["method"]] and r["peak_rss_mb"] <= RSS_TARGET_MB
            target = (
                f"≤ {TARGETS[r['method']]:g} s, ≤ {RSS_TARGET_MB:g} MB: {'met' if ok else 'MISSED'}"
            )
        lines.append(
            f"| {r['method']} | {r['threads']} | {r['best_seconds']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {time_ratio} | {rss_ratio} | "
            f"{r['best_others_cores']:.2f} | {target} |"
        )
    return "\n".join(lines)


def _agreement(data: Path, threads: tuple[int, ...]) -> str | None:
    for t in threads:
        ours, theirs = data / f"pvalues-lmm-null-{t}.npy", data / f"pvalues-fastlmm-{t}.npy"
        if ours.exists() and theirs.exists():
            a, b = -np.log10(np.load(ours)), -np.log10(np.load(theirs))
            return (
                f"lmm-null vs FaST-LMM ({t} thread(s)): max |Δ -log10 p| = "
                f"{np.nanmax(np.abs(a - b)):.2e} over {a.size} genes"
            )
    return None


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for package in ("exprlmm", "numpy", "scipy", "fastlmm", "pysnptools", "threadpoolctl"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="N=200, G=2,000, one repeat")
    parser.add_argument("--n-samples", type=int, help="default 1,090 (200 with --quick)")
    parser.add_argument("--n-genes", type=int, help="default 20,000 (2,000 with --quick)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, help="calls per worker, best kept (default 3)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900.0, help="per worker, seconds")
    parser.add_argument("--json", help="also write the raw numbers to this JSON file")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--write-data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.write_data:
        _write_cohort(Path(args.write_data), args.n_samples, args.n_genes, args.seed)
        return

    if args.worker:
        threads = args.threads[0]
        result = worker(args.worker, Path(args.data), threads, args.repeat or 1)
        print(json.dumps(result))
        return

    n = args.n_samples or (200 if args.quick else 1090)
    g = args.n_genes or (2000 if args.quick else 20000)
    repeat = args.repeat or (1 if args.quick else 3)
    load_before = os.getloadavg()
    started = time.perf_counter()
    busy_before, own_before = _busy_cpu_seconds(), _own_cpu_seconds()
    rows = []
    with tempfile.TemporaryDirectory(prefix="exprlmm-bench-") as tmp:
        data = Path(tmp)
        writer = [sys.executable, __file__, "--write-data", str(data), "--seed", str(args.seed)]
        writer += ["--n-samples", str(n), "--n-genes", str(g)]
        subprocess.run(writer, check=True)
        for threads in args.threads:
            for method in args.methods:
                row = _run_worker(method, data, threads, repeat, args.timeout)
                rows.append(row)
                done = (
                    f"{row['best_seconds']:.2f} s, peak RSS {row['peak_rss_mb']:.0f} MB"
                    if row["status"] == "ok"
                    else row["status"]
                )
                print(f"{method:>10}, {threads} thread(s): {done}", file=sys.stderr, flush=True)
        agreement = _agreement(data, tuple(args.threads))
    load_after = os.getloadavg()
    wall = time.perf_counter() - started
    # cores kept busy by other processes while the benchmark ran
    others = max(
        0.0,
        (_busy_cpu_seconds() - busy_before - (_own_cpu_seconds() - own_before)) / wall,
    )

    header = (
        f"N = {n:,} samples, G = {g:,} genes (K from all genes), best of {repeat}; "
        f"{platform.machine()}, {os.cpu_count()} cores; "
        f"{datetime.date.today().isoformat()}; load average before {load_before[0]:.2f}; "
        f"other processes used {others:.2f} cores on average; total {wall:.0f} s"
    )
    print(header + "\n")
    print(_format_table(rows, full_size=(n, g) == (1090, 20000)))
    if agreement:
        print("\n" + agreement)
    if load_before[0] > 1.5 or others > 0.25:
        print(
            "\nwarning: other processes were using the machine "
            "(load > 1.5 before, or > 0.25 cores during the run); timings are pessimistic"
        )
    if args.json:
        from exprlmm.io.atomic import write_text_atomic

        payload = {
            "n_samples": n,
            "n_genes": g,
            "repeat": repeat,
            "seed": args.seed,
            "cores": os.cpu_count(),
            "date": datetime.date.today().isoformat(),
            "load_average": {"before": load_before, "after": load_after},
            "other_processes_cores": others,
            "versions": _versions(),
            "agreement": agreement,
            "rows": rows,
        }
        write_text_atomic(args.json, json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
