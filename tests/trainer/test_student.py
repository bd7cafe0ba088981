"""The student network (trainer.student): ONNX export and int8 quantization."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trainer.ranker_io import INPUT, OUTPUT, onnx_scores
from trainer.ranker_io import ranker_session as session
from trainer.rows import Rows
from trainer.student import Mlp, StudentConfig, to_onnx, train_student, write_quantized

N_FEATURES = 12


def random_mlp(rng: np.random.Generator, sizes: tuple[int, ...] = (N_FEATURES, 16, 8, 1)) -> Mlp:
    return Mlp(
        mean=rng.standard_normal(sizes[0]).astype(np.float32),
        scale=rng.uniform(0.5, 2.0, sizes[0]).astype(np.float32),
        weights=[(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in itertools.pairwise(sizes)],
        biases=[rng.standard_normal(b).astype(np.float32) * 0.1 for b in sizes[1:]],
    )


def fp32_session(mlp: Mlp, n_features: int) -> ort.InferenceSession:
    return ort.InferenceSession(to_onnx(mlp, n_features).SerializeToString(), providers=["CPUExecutionProvider"])


def test_to_onnx_equals_forward() -> None:
    rng = np.random.default_rng(0)
    mlp = random_mlp(rng)
    sess = fp32_session(mlp, N_FEATURES)
    assert [i.name for i in sess.get_inputs()] == [INPUT]
    assert [o.name for o in sess.get_outputs()] == [OUTPUT]
    for n in (1, 7, 500):
        x = (rng.standard_normal((n, N_FEATURES)) * 2).astype(np.float32)
        (got,) = sess.run([OUTPUT], {INPUT: x})
        assert got.shape == (n,) and got.dtype == np.float32
        np.testing.assert_allclose(got, mlp.forward(x), rtol=1e-5, atol=1e-5)


def tiny_rows(rng: np.random.Generator, groups: int = 40, per_group: int = 30) -> tuple[Rows, np.ndarray]:
    """Rows whose teacher score is a smooth non-linear function of the features."""
    n = groups * per_group
    x = rng.standard_normal((n, N_FEATURES)).astype(np.float32) * rng.uniform(0.5, 3.0, N_FEATURES).astype(np.float32)
    x += rng.uniform(-2, 2, N_FEATURES).astype(np.float32)
    w = rng.standard_normal(N_FEATURES)
    teacher = (np.tanh(x @ w / 4) + 0.3 * np.maximum(x[:, 0], 0.0)).astype(np.float32) * 3
    rows = Rows(
        x=x,
        y=(teacher > np.quantile(teacher, 0.9)).astype(np.float32),
        groups=np.full(groups, per_group, dtype=np.int64),
        users=np.arange(groups, dtype=np.int64),
        items=np.zeros(n, np.uint32),
        source=np.zeros(n, np.uint8),
        retrieval_score=np.zeros(n, np.float32),
        now=np.zeros(groups),
        n_positives=np.ones(groups, dtype=np.int64),
    )
    return rows, teacher


@pytest.fixture(scope="module")
def trained() -> tuple[Mlp, Rows, np.ndarray]:
    rng = np.random.default_rng(1)
    rows, teacher = tiny_rows(rng)
    config = replace(StudentConfig(), hidden=(16, 8), epochs=10, min_steps=100, groups_per_batch=8, learning_rate=5e-3)
    return train_student(rows, teacher, config), rows, teacher


def test_a_tiny_student_learns_the_teacher_order(trained: tuple[Mlp, Rows, np.ndarray]) -> None:
    mlp, rows, teacher = trained
    assert [w.shape for w in mlp.weights] == [(N_FEATURES, 16), (16, 8), (8, 1)]
    s = mlp.forward(rows.x)
    assert np.isfinite(s).all()
    assert np.corrcoef(s, teacher)[0, 1] > 0.8


def test_restarts_keep_the_best_training_on_validation() -> None:
    rows, teacher = tiny_rows(np.random.default_rng(1))
    config = replace(StudentConfig(), hidden=(16, 8), epochs=3, min_steps=20, groups_per_batch=8, restarts=1)

    def quality(mlp: Mlp) -> float:  # how well it copies the teacher
        return float(np.corrcoef(mlp.forward(rows.x), teacher)[0, 1])

    singles = [quality(train_student(rows, teacher, replace(config, seed=k), quality)) for k in range(3)]
    assert len(set(singles)) == 3  # the seeds really differ
    best = train_student(rows, teacher, replace(config, restarts=3), quality)
    assert quality(best) == max(singles)


def test_quantized_scores_follow_fp32(trained: tuple[Mlp, Rows, np.ndarray], tmp_path: Path) -> None:
    mlp, rows, _ = trained
    path = tmp_path / "ranker.onnx"
    write_quantized(mlp, N_FEATURES, path)
    sess = session(path)
    rng = np.random.default_rng(2)
    # random data from the training distribution
    x = rows.x[rng.integers(0, len(rows.x), 2000)] + rng.normal(0, 0.1, (2000, N_FEATURES)).astype(np.float32)
    x = x.astype(np.float32)
    q = onnx_scores(sess, x, chunk=512)  # several chunks
    fp = fp32_session(mlp, N_FEATURES).run([OUTPUT], {INPUT: x})[0]
    assert q.shape == fp.shape == (2000,) and q.dtype == np.float32
    np.testing.assert_allclose(fp, mlp.forward(x), rtol=1e-5, atol=1e-5)
    assert np.corrcoef(q, fp)[0, 1] > 0.95
    # it is really quantized: int8 weights, scores not identical
    assert any(n.op_type in ("DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul") for n in _nodes(path))
    assert not np.array_equal(q, fp)


def _nodes(path: Path) -> list:  # type: ignore[type-arg]
    import onnx

    return list(onnx.load(str(path)).graph.node)


def test_onnx_scores_of_nothing(tmp_path: Path) -> None:
    mlp = random_mlp(np.random.default_rng(3))
    path = tmp_path / "m.onnx"
    write_quantized(mlp, N_FEATURES, path)
    out = onnx_scores(session(path), np.empty((0, N_FEATURES), np.float32))
    assert out.shape == (0,) and out.dtype == np.float32
