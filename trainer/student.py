"""The student: a small network distilled from the teacher, exported to ONNX, quantized.

A 3-layer perceptron (F-64-32-1, ReLU) on standardised inputs learns the teacher's ordering within
each candidate pool with a ListNet loss (cross-entropy between the softmax
of the teacher's and the student's scores per user), trained with Adam in
NumPy. The network is written with ``onnx.helper`` (the standardisation
stays a float32 Sub and Mul ahead of the first layer, so that the weights
keep a narrow range) and its weights are quantized to int8, per channel, by
onnxruntime's dynamic quantization.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from tqdm import trange

from trainer.ranker_io import INPUT, OUTPUT
from trainer.rows import Rows

OPSET = 17
IR_VERSION = 9


@dataclass(frozen=True)
class StudentConfig:
    hidden: tuple[int, int] = (64, 32)
    epochs: int = 40
    min_steps: int = 3000  # small data gets more epochs
    groups_per_batch: int = 16
    learning_rate: float = 2e-3
    temperature: float = 1.0
    # Independent trainings (seeds seed, seed+1, ...), the best on validation kept: one
    # unlucky initialisation must not decide the gate on a small validation set.
    restarts: int = 3
    seed: int = 0


@dataclass
class Mlp:
    mean: np.ndarray  # input standardisation, kept in float32 ahead of the first layer
    scale: np.ndarray  # 1 / std
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mean) * self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h[..., 0]


def _padded(rows: Rows, values: np.ndarray, fill: float) -> np.ndarray:
    """[n_groups, max_group, ...] with ``fill`` beyond each group's end."""
    off = rows.offsets()
    width = int(rows.groups.max())
    out = np.full((len(rows.groups), width, *values.shape[1:]), fill, dtype=np.float32)
    for g in range(len(rows.groups)):
        out[g, : rows.groups[g]] = values[off[g] : off[g + 1]]
    return out


def _softmax(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, z, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z) * mask
    return e / e.sum(axis=1, keepdims=True)


def _snapshot(ws: list[np.ndarray], bs: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> Mlp:
    return Mlp(
        mean.astype(np.float32),
        (1.0 / std).astype(np.float32),
        [w.copy() for w in ws],
        [b.copy() for b in bs],
    )


def train_student(
    rows: Rows,
    teacher: np.ndarray,
    config: StudentConfig,
    validate: Callable[[Mlp], float] | None = None,
) -> Mlp:
    """Distil ``teacher`` scores (one per row) into an MLP on standardised inputs.

    With ``validate`` (higher is better), the weights of the best epoch of the best of
    ``config.restarts`` trainings are kept; without it, the last epoch of one training.
    """
    if validate is None or config.restarts <= 1:
        return _train_once(rows, teacher, config, validate)[0]
    runs = [_train_once(rows, teacher, replace(config, seed=config.seed + k), validate) for k in range(config.restarts)]
    return max(runs, key=lambda run: run[1])[0]


def _train_once(
    rows: Rows, teacher: np.ndarray, config: StudentConfig, validate: Callable[[Mlp], float] | None
) -> tuple[Mlp, float]:
    """One training from ``config.seed``: the kept weights and their validation quality (-inf without)."""
    rng = np.random.default_rng(config.seed)
    mean = rows.x.mean(axis=0)
    std = rows.x.std(axis=0)
    std[std < 1e-6] = 1.0
    xs = _padded(rows, (rows.x - mean) / std, 0.0)
    ts = _padded(rows, teacher[:, None], 0.0)[..., 0]
    mask = _padded(rows, np.ones((len(rows.y), 1), np.float32), 0.0)[..., 0] > 0
    target = _softmax(ts / config.temperature, mask)

    sizes = [rows.x.shape[1], *config.hidden, 1]
    ws = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32) for a, b in itertools.pairwise(sizes)]
    bs = [np.zeros(b, np.float32) for b in sizes[1:]]
    params = ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    best, best_quality = _snapshot(ws, bs, mean, std), -np.inf
    b1, b2, eps = 0.9, 0.999, 1e-8
    n_groups = xs.shape[0]
    per_epoch = -(-n_groups // config.groups_per_batch)
    epochs = max(config.epochs, -(-config.min_steps // per_epoch))
    for _ in trange(epochs, desc=f"student (seed {config.seed})", unit="epoch", leave=False):
        for start in range(0, n_groups, config.groups_per_batch):
            idx = np.arange(start, min(start + config.groups_per_batch, n_groups))
            x, tgt, mk = xs[idx], target[idx], mask[idx]
            # forward
            acts = [x]
            h = x
            for i in range(len(ws)):
                h = h @ ws[i] + bs[i]
                if i < len(ws) - 1:
                    h = np.maximum(h, 0.0)
                acts.append(h)
            s = h[..., 0] / config.temperature
            p = _softmax(s, mk)
            # ListNet gradient: d(CE)/ds = p - target, per group, averaged over groups
            grad = ((p - tgt) * mk / len(idx) / config.temperature)[..., None].astype(np.float32)
            grads_w: list[np.ndarray] = [np.empty(0)] * len(ws)
            grads_b: list[np.ndarray] = [np.empty(0)] * len(ws)
            for i in reversed(range(len(ws))):
                a_in = acts[i]
                # One BLAS product over all rows (einsum here would not use BLAS: ~8x slower).
                grads_w[i] = a_in.reshape(-1, a_in.shape[-1]).T @ grad.reshape(-1, grad.shape[-1])
                grads_b[i] = grad.sum(axis=(0, 1))
                if i > 0:
                    grad = (grad @ ws[i].T) * (acts[i] > 0)
            step += 1
            for j, g in enumerate(grads_w + grads_b):
                m[j] = b1 * m[j] + (1 - b1) * g
                v[j] = b2 * v[j] + (1 - b2) * g * g
                mh = m[j] / (1 - b1**step)
                vh = v[j] / (1 - b2**step)
                params[j] -= (config.learning_rate * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        order = rng.permutation(n_groups)
        xs, target, mask = xs[order], target[order], mask[order]
        current = _snapshot(params[: len(ws)], params[len(ws) :], mean, std)
        if validate is None:
            best = current
            continue
        quality = validate(current)
        if quality > best_quality:
            best, best_quality = current, quality
    return best, best_quality


def to_onnx(mlp: Mlp, n_features: int) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Sub", [INPUT, "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["standard"]),
    ]
    inits = [numpy_helper.from_array(mlp.mean, "mean"), numpy_helper.from_array(mlp.scale, "scale")]
    prev = "standard"
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"mm{i}"]))
        out = f"h{i}"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"B{i}"], [out]))
        if i < len(mlp.weights) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev = out
    inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"))
    nodes.append(helper.make_node("Reshape", [prev, "flat"], [OUTPUT]))
    graph = helper.make_graph(
        nodes,
        "edgerank_student",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", n_features])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_quantized(mlp: Mlp, n_features: int, path: Path) -> None:
    """Export to ONNX and quantize the weights to int8 into ``path``."""
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(to_onnx(mlp, n_features), fp32)
        # Per-channel scales: one outlier column must not flatten the others.
        quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, per_channel=True)
