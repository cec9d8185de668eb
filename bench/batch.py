"""A class of 100,000 students end to end, against the bare model and a row-by-row loop.

End to end = parse + validate + predict (grade, interval, P(pass), band) + SHAP per row + one bulk
log insert. Baselines, measured in this run on the same rows: the bare ``pipeline.predict`` plus
``shap.TreeExplainer(...).shap_values`` per setup, and a loop calling the model one row at a time.
The end-to-end run happens in a fresh child process so its peak memory is its own.
"""

from __future__ import annotations

import multiprocessing
import os
import time

N_ROWS = int(os.environ.get("BENCH_BATCH_ROWS", "100000"))
LOOP_ROWS = 300


def _end_to_end(home: str, n_rows: int, queue: multiprocessing.Queue) -> None:
    os.environ["MATHSIGHT_HOME"] = home
    from bench._common import class_file, peak_rss_mb
    from model.serving.service import ModelStore, predict_batch
    from model.settings import get_settings
    from model.store.db import get_engine

    data = class_file(n_rows)
    engine = get_engine()
    store = ModelStore(engine, settings=get_settings())
    store.refresh()
    started = time.perf_counter()
    prediction = predict_batch(store, engine, data, channel="cli")
    seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "rows": len(prediction.results), "peak_rss_mb": peak_rss_mb()})


def _bare_seconds(store, frame) -> float:
    import shap

    from model.schema.validation import row_setups

    setups = row_setups(frame)
    started = time.perf_counter()
    for setup in ("period2", "period1", "early"):
        rows = frame[setups == setup]
        estimator = store.get(setup).estimator
        pipeline = estimator.mean_head_
        X = estimator._inputs(rows, estimator.features_)
        pipeline.predict(X)
        shap.TreeExplainer(pipeline.named_steps["gbm"]).shap_values(pipeline.named_steps["pre"].transform(X))
    return time.perf_counter() - started


def _loop_seconds_per_row(store, frame) -> float:
    """The way most grade apps do it: per student, the sklearn pipeline's predict and a SHAP call."""
    import shap

    from model.schema.validation import row_setups

    rows = frame.iloc[:LOOP_ROWS]
    setups = row_setups(rows)
    explainers = {}
    started = time.perf_counter()
    for i in range(len(rows)):
        estimator = store.get(setups.iloc[i]).estimator
        pipeline = estimator.mean_head_
        if setups.iloc[i] not in explainers:
            explainers[setups.iloc[i]] = shap.TreeExplainer(pipeline.named_steps["gbm"])
        one = estimator._inputs(rows.iloc[[i]], estimator.features_)
        pipeline.predict(one)
        explainers[setups.iloc[i]].shap_values(pipeline.named_steps["pre"].transform(one))
    return (time.perf_counter() - started) / len(rows)


def main() -> None:
    from bench._common import class_frame, engine_with_models, isolated_home
    from model.schema.validation import validate_frame
    from model.serving.service import ModelStore
    from model.settings import get_settings

    home = isolated_home()
    engine = engine_with_models()
    store = ModelStore(engine, settings=get_settings())
    frame = validate_frame(class_frame(N_ROWS)).accepted

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_end_to_end, args=(str(home), N_ROWS, queue))
    child.start()
    result = queue.get()
    child.join()

    bare = _bare_seconds(store, frame)
    per_row_loop = _loop_seconds_per_row(store, frame)
    per_row_batch = result["seconds"] / result["rows"]
    print(f"rows: {result['rows']:,} (cores: {os.cpu_count()})")
    seconds = result["seconds"]
    print(f"end to end (parse, validate, predict, interval, P(pass), SHAP, log): {seconds:.2f} s  [target <= 30 s]")
    print(f"bare pipeline.predict + TreeExplainer, same rows:               {bare:.2f} s")
    print(f"ratio end-to-end / bare: {result['seconds'] / bare:.2f}  [target <= 1.5]")
    print(f"row-by-row loop: {per_row_loop * 1000:.2f} ms/row; batch: {per_row_batch * 1000:.4f} ms/row")
    print(f"ratio loop / batch per row: {per_row_loop / per_row_batch:.0f}x  [target >= 100x]")
    print(f"peak RSS of the end-to-end process: {result['peak_rss_mb']:.0f} MB  [target <= 1500 MB]")


if __name__ == "__main__":
    main()
