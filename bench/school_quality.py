"""What training on the school's own students gives, measured through the product's own path.

``python -m bench school_quality`` (a few minutes; run only when named, it measures quality,
not speed). The real UCI maths file is split at random (seed 14): 195 students stand in for the bundled
data and the default version is trained on them; the other 200 are "our students", never seen by it.
They are predicted through the service, their real G3 recorded as outcomes, and versions are trained
from those outcomes alone and pooled with the 195 (school weight 1 and 2). Every version is then judged
on our 200 students by :func:`model.ml.gates.judge`: the default one by plain scoring, the ones that
learned from our students out-of-fold (10-fold), with the bootstrap noise of each difference.
"""

from __future__ import annotations

import sqlalchemy as sa

from bench._common import isolated_home


def main() -> None:
    isolated_home()
    import pandas as pd

    from model.accounts.users import create_user
    from model.ml.dataset import load_raw
    from model.ml.gates import judge
    from model.ml.schooldata import TrainingChoice, school_training_set
    from model.ml.training import register, train_setup
    from model.serving.outcomes import record_outcomes_csv
    from model.serving.service import ModelStore, predict_batch
    from model.settings import get_settings
    from model.store.db import get_engine, migrate, session_scope
    from model.store.tables import ActiveModel

    settings = get_settings()
    engine = get_engine(settings.database_url)
    migrate(engine)
    shuffled = load_raw(settings=settings).sample(frac=1.0, random_state=14).reset_index(drop=True)
    stand_in, ours = shuffled.iloc[:195].reset_index(drop=True), shuffled.iloc[195:].reset_index(drop=True)
    ours.insert(0, "student_id", [f"S{i:03d}" for i in range(len(ours))])
    with session_scope(engine) as session:
        admin = create_user(session, "bench-admin", "bench-password-123", role="admin", name="Bench", actor="bench")
        for setup in ("early", "period2"):
            register(session, train_setup(stand_in, setup, runs=0), "default", activate=True, settings=settings)
    store = ModelStore(engine, settings=settings)
    for columns in (["G1", "G2"], []):  # period2 predictions, then early ones (without the grades)
        predict_batch(store, engine, ours.drop(columns=["G3", *columns]).to_csv(sep=";", index=False), channel="cli",
                      user_id=admin.id)  # fmt: skip
    with session_scope(engine) as session:
        record_outcomes_csv(session, settings, ours[["student_id", "G3"]].to_csv(index=False), admin.id)
    CHOICES = (("outcomes alone", TrainingChoice("outcomes")), ("pooled, weight 1", TrainingChoice("pooled", 1)),
               ("pooled, weight 2", TrainingChoice("pooled", 2)))  # fmt: skip
    rows = []
    for setup in ("early", "period2"):
        for label, choice in CHOICES:
            with session_scope(engine) as session:
                data = school_training_set(session, setup, choice, settings=settings, bundled=stand_in)
                trained = train_setup(data.protocol, setup, runs=0, fit_frame=data.fit)
                trained.data_reference, trained.school_rows = data.reference, data.school
                version = register(session, trained, "bench", settings=settings)
            with session_scope(engine) as session:
                result = judge(session, version, settings=settings, bundled=stand_in)
                default = session.scalar(sa.select(ActiveModel.version_id).where(ActiveModel.setup == setup))
            table = result.table
            for metric in ("binary_accuracy", "rmse", "ece", "roc_auc"):
                rows.append({"setup": setup, "candidate": label, "metric": metric,
                             "default (plain)": table.loc[metric, "active"],
                             "candidate (out-of-fold)": table.loc[metric, "candidate"],
                             "difference": table.loc[metric, "difference"],
                             "noise": table.loc[metric, "noise"]})  # fmt: skip
        print(f"{setup}: default version {default} trained on the 195 stand-in students; judged on {result.data}")
    pd.set_option("display.width", 160)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
