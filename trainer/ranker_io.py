"""Running a bundle's ONNX ranker: the session options and the input and output names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from trainer.bundle import BundleError

INPUT = "features"
OUTPUT = "score"


def ranker_session(path: Path) -> ort.InferenceSession:
    """An onnxruntime session for a ranker: one thread, sequential, checked names."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names_in = [i.name for i in sess.get_inputs()]
    names_out = [o.name for o in sess.get_outputs()]
    if INPUT not in names_in or OUTPUT not in names_out:
        raise BundleError(f"{path}: ranker must take {INPUT!r} and give {OUTPUT!r}, has {names_in} -> {names_out}")
    return sess


def onnx_scores(sess: ort.InferenceSession, x: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Scores for a feature matrix of any length, in chunks."""
    parts = [sess.run([OUTPUT], {INPUT: x[i : i + chunk]})[0] for i in range(0, len(x), chunk)]
    return np.concatenate(parts).astype(np.float32) if parts else np.empty(0, np.float32)
