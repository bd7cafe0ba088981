"""The LightGBM teacher: a LambdaRank model over the ranking rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from trainer.rows import Rows


@dataclass(frozen=True)
class TeacherConfig:
    num_trees: int = 300
    num_leaves: int = 31
    learning_rate: float = 0.05
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.8
    early_stopping: int = 30
    seed: int = 0


def train_teacher(train: Rows, valid: Rows, names: list[str], config: TeacherConfig) -> lgb.Booster:
    params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "num_leaves": config.num_leaves,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "bagging_seed": config.seed,
        "feature_fraction_seed": config.seed,
        "seed": config.seed,
        "deterministic": True,
        "num_threads": 2,
        "verbosity": -1,
    }
    dtrain = lgb.Dataset(train.x, train.y, group=train.groups, feature_name=names, free_raw_data=False)
    dvalid = lgb.Dataset(valid.x, valid.y, group=valid.groups, reference=dtrain)
    return lgb.train(
        params,
        dtrain,
        num_boost_round=config.num_trees,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(config.early_stopping, verbose=False)],
    )


def save_teacher(booster: lgb.Booster, path: Path) -> None:
    booster.save_model(str(path), num_iteration=booster.best_iteration or None)


def load_teacher(path: Path) -> lgb.Booster:
    return lgb.Booster(model_file=str(path))


def teacher_scores(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(x, num_threads=2), dtype=np.float32)
