"""A district file of 1,000,000 students through ``python -m model predict``, streamed in chunks.

The file resamples the real maths rows (for speed only, never to judge quality), a third each with no
grades, G1 only, G1 and G2, with one row in a thousand made invalid (an age of 99) at known places.
The command runs as a subprocess, end to end: start, migrations, model load, read, validate, predict,
SHAP factors, the prediction log (SQLite, a fresh copy of the same database for every run) and both
output files. Its wall time and memory are set beside a baseline measured in the same run on a
100,000-row file. Memory, sampled every 0.1 s over the command and its worker processes: the peak
of their summed PSS (each shared page divided among the processes sharing it: the memory the run
really takes), the peak of their summed RSS (an upper bound: the pages the forked workers share
with their parent counted once per process) and the largest single process's peak RSS
(``os.wait4``'s ``ru_maxrss``). The baseline: the one-shot
path the command used before streaming (``predict_batch`` on the whole file, then the whole results
table written), and the streaming command itself. The run is checked, not only timed: the predicted and rejected counts,
the rejected row numbers, the output's rows in order, and the log's rows by status.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

N_ROWS = int(os.environ.get("BENCH_DISTRICT_ROWS", "1000000"))
BASELINE_ROWS = 100_000
PART_ROWS = 100_000  # rows generated (and written) at a time
BAD_EVERY = 1000

ONE_SHOT = """
import sys
from pathlib import Path
from model.cli.common import migrated_engine
from model.logs import configure_logging
from model.serving.downloads import results_table, to_csv_bytes
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings
settings = get_settings()
configure_logging(settings)
engine = migrated_engine(settings)
prediction = predict_batch(ModelStore(engine, settings=settings), engine, Path(sys.argv[1]).read_bytes(), channel="cli")
Path(sys.argv[2]).write_bytes(to_csv_bytes(results_table(prediction)))
"""


def write_district(path: Path, n_rows: int) -> np.ndarray:
    """Write the file (';'-separated, as the real one); returns the spreadsheet rows made invalid."""
    from bench._common import class_frame

    bad = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        for start in range(0, n_rows, PART_ROWS):
            part = class_frame(min(PART_ROWS, n_rows - start), seed=start // PART_ROWS)
            part["student_id"] = [f"D-{start + i:07d}" for i in range(len(part))]
            part["age"] = part["age"].astype(object)
            positions = np.arange(BAD_EVERY // 2, len(part), BAD_EVERY)
            part.loc[positions, "age"] = "99"
            bad.append(start + positions + 2)  # header = row 1
            handle.write(part.to_csv(index=False, sep=";", header=start == 0))
    return np.concatenate(bad)


def _tree_memory_mb(root: int) -> tuple[float, float]:
    """The summed PSS and RSS of ``root`` and its descendants now, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, pss, rss = {root}, 0.0, 0.0
    for _ in range(3):  # children, grandchildren
        tree |= {pid for pid, parent in parents.items() if parent in tree}
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        pss += sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:")) / 1024
        rss += sum(int(line.split()[1]) for line in rollup if line.startswith("Rss:")) / 1024
    return pss, rss


def run(command: list[str], database: Path, template: Path) -> tuple[float, float, tuple[float, float, float], int]:
    """Run ``command`` on a fresh copy of the database: wall seconds, CPU seconds (its own and its workers'),
    the peak summed PSS and RSS of its process tree and the largest process's peak RSS (MB), exit code."""
    shutil.copy(template, database)
    env = os.environ | {"DATABASE_URL": f"sqlite:///{database}"}
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):  # sampling period
            peak[:] = map(max, peak, _tree_memory_mb(child.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, (peak[0], peak[1], usage.ru_maxrss / 1024), child.returncode


def check(output: Path, rejected: Path, database: Path, n_rows: int, bad_rows: np.ndarray) -> str:
    """What the run wrote, against what the file holds; raises if anything is off."""
    import pandas as pd

    expected = np.setdiff1d(np.arange(2, n_rows + 2), bad_rows)
    rows = pd.read_csv(output, usecols=["row"], encoding="utf-8-sig")["row"].to_numpy()
    problems = pd.read_csv(rejected, usecols=["row", "column"], encoding="utf-8-sig")
    with sqlite3.connect(database) as connection:
        logged = dict(connection.execute("SELECT status, count(*) FROM prediction_log GROUP BY status").fetchall())
    assert np.array_equal(rows, expected), "the output's rows are not the valid rows in file order"
    assert np.array_equal(problems["row"].to_numpy(), bad_rows), "the rejected rows are not the invalid ones"
    assert set(problems["column"]) == {"age"}
    assert logged == {"ok": len(expected), "rejected": len(bad_rows)}, f"log holds {logged}"
    return f"checked: {len(expected):,} rows predicted in order, {len(bad_rows):,} rejected at their rows, log {logged}"


def main() -> None:
    from bench._common import engine_with_models, isolated_home
    from model.settings import get_settings

    home = isolated_home()
    engine = engine_with_models()
    engine.dispose()
    template = Path(get_settings().database_url.removeprefix("sqlite:///"))
    district, small = home / "district.csv", home / "class-100k.csv"
    bad_rows = write_district(district, N_ROWS)
    small_bad = write_district(small, BASELINE_ROWS)
    print(f"cores: {os.cpu_count()}; district file: {N_ROWS:,} rows, {district.stat().st_size / 1e6:.0f} MB")

    predict = [sys.executable, "-m", "model", "predict"]
    figures = {}
    for name, command, rows, bad, database in (
        ("one-shot path (before streaming), 100k", [sys.executable, "-c", ONE_SHOT, str(small), str(home / "a.csv")],
         BASELINE_ROWS, None, home / "a.db"),
        ("streaming CLI, 100k", [*predict, "--input", str(small), "--output", str(home / "b.csv")],
         BASELINE_ROWS, small_bad, home / "b.db"),
        (f"streaming CLI, {N_ROWS // 1000:,}k", [*predict, "--input", str(district), "--output", str(home / "c.csv")],
         N_ROWS, bad_rows, home / "c.db"),
    ):  # fmt: skip
        seconds, cpu, (pss, rss, largest), code = run(command, database, template)
        figures[name] = (rows / seconds, pss)
        print(f"{name:40s} CPU {cpu:5.1f} s ({rows / cpu:,.0f} rows per CPU second); load average after: "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work on the machine shows here)")  # fmt: skip
        print(f"{name:40s} {seconds:6.1f} s {rows / seconds:7,.0f} rows/s; peak memory: PSS {pss:4.0f} MB, "
              f"RSS {rss:4.0f} MB summed, {largest:3.0f} MB largest process (exit {code})")  # fmt: skip
        if bad is not None:
            output = Path(command[command.index("--output") + 1])
            print("   ", check(output, output.with_name(output.stem + ".rejected.csv"), database, rows, bad))
    base_speed, base_pss = figures["one-shot path (before streaming), 100k"]
    big_speed, big_pss = figures[f"streaming CLI, {N_ROWS // 1000:,}k"]
    print(f"{N_ROWS:,} rows: {big_speed:,.0f} rows/s [target >= 15,000], peak PSS {big_pss:.0f} MB [target <= 1,024]")
    ratios = f"speed {big_speed / base_speed:.2f}x, peak PSS {big_pss / base_pss:.2f}x"
    print(f"ratio to the one-shot path on 100k rows: {ratios}")


if __name__ == "__main__":
    main()
