"""One student from the form: validate, predict, explain and log, 1,000 times; p50/p95.

The baseline, measured in the same run, is the bare ``estimator.predict`` of the same one-row frame.
"""

from __future__ import annotations

import time

CALLS = 1000


def main() -> None:
    from bench._common import class_frame, engine_with_models, isolated_home, percentile
    from model.schema.validation import validate_frame
    from model.serving.service import ModelStore, predict_one
    from model.settings import get_settings

    isolated_home()
    engine = engine_with_models()
    store = ModelStore(engine, settings=get_settings())
    store.refresh()
    students = class_frame(CALLS, seed=1)
    records = [{k: v for k, v in row.items() if v is not None and v == v} for row in students.to_dict("records")]
    for record in records[:20]:
        predict_one(store, engine, record, channel="ui")
    service_ms, bare_ms = [], []
    for record in records:
        started = time.perf_counter()
        prediction = predict_one(store, engine, record, channel="ui")
        service_ms.append((time.perf_counter() - started) * 1000)
        estimator = store.get(prediction.results.iloc[0]["setup"]).estimator
        one = validate_frame(students.iloc[[len(service_ms) - 1]]).accepted
        started = time.perf_counter()
        estimator.predict(one)
        bare_ms.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentile(service_ms, 50), percentile(service_ms, 95)
    b50 = percentile(bare_ms, 50)
    print(f"calls: {CALLS} (each: validate, predict, interval, P(pass), SHAP, one log insert into SQLite)")
    print(f"service p50 {p50:.2f} ms, p95 {p95:.2f} ms  [target p95 <= 5 ms]")
    print(f"bare estimator.predict p50 {b50:.2f} ms; ratio service/bare at p50: {p50 / b50:.1f}")


if __name__ == "__main__":
    main()
