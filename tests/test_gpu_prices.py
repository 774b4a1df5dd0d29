"""--gpu NAME (issue 12): the shipped, dated price table, the user's override (TOML or JSON), and
the one-line error that names the known GPUs."""

from __future__ import annotations

import json
from argparse import Namespace
from importlib import resources
from pathlib import Path

import pytest

from runpod_testkit.cost import estimate_cost
from runpod_testkit.gpu_prices import GpuPriceError, load_price_table, resolve_gpu, tomllib
from runpod_testkit.jobstats import HealthSample
from runpod_testkit.loadtest.settings import Settings, SettingsError
from tests.test_loadtests import explain, run_locust

PRICING_PAGE = "https://docs.runpod.io/serverless/pricing"


def test_the_shipped_table_is_dated_and_cites_the_pricing_page() -> None:
    text = resources.files("runpod_testkit").joinpath("gpu_prices.toml").read_text("utf-8")
    document = tomllib.loads(text)
    assert document["source"] == PRICING_PAGE
    assert len(document["read"]) == len("2026-12-05")
    table = load_price_table()
    for name in ("A100-80GB", "H100-80GB", "RTX-4090", "L40S"):
        assert 0 < table[name]["active"] < table[name]["flex"] < 0.01, name
        assert table[name]["source"] == PRICING_PAGE
        assert table[name]["listed_as"]


def test_a_name_resolves_to_its_flex_or_active_price() -> None:
    table = load_price_table()
    flex = resolve_gpu("A100-80GB", table)
    assert (flex.name, flex.tier, flex.price_per_s) == ("A100-80GB", "flex", 0.00076)
    active = resolve_gpu("a100 80gb:active", table)  # case, spaces and hyphens do not matter
    assert (active.name, active.tier, active.price_per_s) == ("A100-80GB", "active", 0.0006)
    assert PRICING_PAGE in flex.describe()
    assert flex.to_json()["read"] == table["A100-80GB"]["read"]


def test_an_unknown_name_lists_the_known_ones_on_one_line() -> None:
    with pytest.raises(GpuPriceError) as caught:
        resolve_gpu("Z9000", load_price_table())
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown GPU 'Z9000'" in message
    assert "A100-80GB" in message
    assert "RTX-4090" in message
    with pytest.raises(GpuPriceError, match="tier"):
        resolve_gpu("L40S:spot", load_price_table())


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_price_file_adds_and_replaces_entries(tmp_path: Path, suffix: str) -> None:
    document = {
        "source": "our contract",
        "read": "2026-11-30",
        "gpus": {"a100-80gb": {"flex": 0.0005}, "MI300X": {"flex": 0.002, "active": 0.0015}},
    }
    path = tmp_path / f"prices{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(document), encoding="utf-8")
    else:
        path.write_text(
            'source = "our contract"\nread = "2026-11-30"\n'
            "[gpus.a100-80gb]\nflex = 0.0005\n[gpus.MI300X]\nflex = 0.002\nactive = 0.0015\n",
            encoding="utf-8",
        )
    table = load_price_table(str(path))
    replaced = resolve_gpu("A100-80GB", table)
    assert replaced.price_per_s == 0.0005
    assert replaced.source == "our contract"
    with pytest.raises(GpuPriceError, match="no active price"):
        resolve_gpu("A100-80GB:active", table)  # the file's entry replaced the whole row
    assert resolve_gpu("mi300x:active", table).price_per_s == 0.0015
    assert resolve_gpu("H100-80GB", table).source == PRICING_PAGE  # the rest stays


def test_a_bad_price_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"gpus": {"X": {"flex": -1}}}', encoding="utf-8")
    with pytest.raises(GpuPriceError, match=r"gpus\.X\.flex: expected dollars >= 0"):
        load_price_table(str(path))
    with pytest.raises(GpuPriceError, match="cannot read"):
        load_price_table(str(tmp_path / "missing.toml"))


def options(**values: object) -> Namespace:
    return Namespace(**values)


def test_settings_price_the_run_from_the_named_gpu(tmp_path: Path) -> None:
    settings = Settings.from_options(options(gpu="H100-80GB:active"))
    assert settings.gpu_price_per_s == 0.00093
    assert settings.gpu_price is not None
    with pytest.raises(SettingsError, match=r"^--gpu: unknown GPU 'nope'; known: A100-80GB, "):
        Settings.from_options(options(gpu="nope"))
    given = Settings.from_options(options(gpu="L40S", gpu_price_per_s="0.001"))
    assert given.gpu_price_per_s == 0.001  # a given price wins over the table's
    assert given.gpu_price is not None
    assert given.gpu_price.source == "--gpu-price-per-s"
    bad = tmp_path / "bad.toml"
    bad.write_text("gpus = 3", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"^--gpu-prices: "):
        Settings.from_options(options(gpu="L40S", gpu_prices=str(bad)))


def test_the_cost_names_its_price_and_shows_per_job_and_per_1000_jobs() -> None:
    price = resolve_gpu("RTX-4090", load_price_table())
    samples = [HealthSample(t, 0, 1, {"running": 2}) for t in (0.0, 10.0)]
    cost = estimate_cost(
        samples,
        completed_jobs=40,
        price_per_s=price.price_per_s,
        duration_s=10.0,
        price_source=price.describe(),
    )
    assert cost is not None
    document = cost.to_json()
    assert document["dollars"] == pytest.approx(20 * 0.00031)
    assert document["dollarsPerJob"] == pytest.approx(20 * 0.00031 / 40)
    assert document["dollarsPer1000Jobs"] == pytest.approx(20 * 0.00031 / 40 * 1000)
    assert document["priceSource"] == price.describe()
    line = cost.line()
    assert "per completed job" in line
    assert "per 1,000 jobs" in line
    assert "RTX-4090 flex" in line
    assert "RTX-4090 flex" in cost.html_section()


@pytest.mark.slow
def test_a_load_run_with_an_unknown_gpu_exits_2_naming_the_known_ones(tmp_path: Path) -> None:
    result = run_locust(tmp_path, "--headless", "-u", "1", "--run-time", "1s", "--gpu", "Z9000")
    assert result.returncode == 2, explain(result)
    lines = [line for line in result.stderr.splitlines() if "Z9000" in line]
    assert len(lines) == 1, result.stderr
    assert "known: A100-80GB" in lines[0]
