"""``edgerank bench hotpath``: a tiny run reports every figure, from one run."""

from __future__ import annotations

from node.bench_hotpath import HotpathBench, run


def test_small_run_reports_medians_minima_cpu_and_conditions() -> None:
    result = run(HotpathBench(items=2_000, candidates=100, results=10, repeat=10))
    for key in ("rust_us", "numpy_us", "rust_min_us", "numpy_min_us", "rust_cpu_us", "numpy_cpu_us"):
        assert result[key] > 0, key
    assert abs(result["speedup"] - result["numpy_us"] / result["rust_us"]) < 0.2  # one run, one ratio
    assert result["rust_min_us"] <= result["rust_us"]
    assert set(result["stages_median_us"]["rust"]) == {"blend", "assemble", "rerank"}
    tables = result["assemble_tables"]
    for key in ("in_memory_us", "mapped_us", "in_memory_cpu_us", "mapped_cpu_us"):
        assert tables[key] > 0, key
    assert tables["mapped_min_us"] <= tables["mapped_us"]
    machine = result["machine"]
    assert machine["cpu"] and len(machine["load_avg_start"]) == 3 and len(machine["load_avg_end"]) == 3
