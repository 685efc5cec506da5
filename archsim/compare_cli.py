"""`archsim compare` on the command line: options checked (exit 2 with a message), tables printed,
files written (compare.csv, savings.png/.svg; with --attribution and --sensitivity their CSVs and
figures). Every file is deterministic: no paths or times in the CSVs; timings go to stderr only."""

from __future__ import annotations

import csv
import io
import sys
import tempfile
import time
from pathlib import Path

from archsim import compare as cmp
from archsim.errors import ConfigError

EXIT_OK = 0


def parse_study(text: str) -> tuple[str, int]:
    """``"b1@224"`` -> ("b1", 224)."""
    model, sep, res = text.partition("@")
    if not sep:
        raise ConfigError(f"--study {text!r}: expected MODEL@RESOLUTION, e.g. b1@224")
    return cmp.parse_models(model)[0], cmp.parse_resolutions(res)[0]


def _rows_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def format_attribution(att) -> str:
    lines = [
        f"attribution, table {att.table}, {att.model.upper()}@{att.resolution}, equal multiplier budget: "
        f"ln(EDP ratio) = {att.log_ratio:+.4f} (EDP ratio {pow(2.718281828459045, att.log_ratio):.4f})",
        f"  {'cause':<48}{'ln part':>9}{'share':>9}{'ratio factor':>14}",
    ]
    for r in att.rows():
        lines.append(
            f"  {r['cause']:<48}{r['log_edp_ratio_part']:>+9.4f}{r['share_of_log_ratio'] * 100:>8.1f}%"
            f"{r['edp_ratio_factor']:>14.4f}"
        )
    lines.append("  (Shapley values over the 6 factors + the residual; they sum to the total exactly)")
    return "\n".join(lines)


def format_sensitivity(table: str, base: float, entries: list[dict]) -> str:
    lines = [f"sensitivity, table {table}: EDP saving {base * 100:.1f} % at the defaults"]
    lines.append(f"  {'parameter':<18}{'low':>14}{'saving':>9}{'high':>14}{'saving':>9}")
    for e in sorted(entries, key=lambda e: -abs(e["saving_high"] - e["saving_low"])):
        lines.append(
            f"  {e['parameter']:<18}{e['low_label']:>14}{e['saving_low'] * 100:>8.1f}%"
            f"{e['high_label']:>14}{e['saving_high'] * 100:>8.1f}%"
        )
    return "\n".join(lines)


def main(args) -> int:
    from archsim import compare_study as study
    from archsim.report import compare_plots

    models = cmp.parse_models(args.models)
    resolutions = cmp.parse_resolutions(args.resolutions)
    tables = cmp.parse_choice(args.tables, "--tables", tuple(cmp.TABLES))
    budgets = cmp.parse_choice(args.budgets, "--budgets", cmp.BUDGETS)
    f = cmp.check_sat_lane_area(args.sat_lane_area)
    study_model, study_res = parse_study(args.study)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a folder")
    folder = out / "runs" if out else Path(tempfile.mkdtemp(prefix="archsim-compare-"))
    runner = cmp.Runner(folder, workers=args.workers, cache=not args.no_cache, progress=not args.no_progress)
    t0 = time.perf_counter()
    rows = cmp.compare_rows(models, resolutions, tables, budgets, f, runner)
    print(cmp.format_table(rows))
    written = []
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.csv").write_text(cmp.csv_text(rows))
        written.append(out / "compare.csv")
        written += compare_plots.write(compare_plots.savings_figure(rows), out / "savings")
    if args.attribution:
        att_rows = []
        for table in tables:
            att = study.attribution(table, study_model, study_res, runner, f)
            print()
            print(format_attribution(att))
            att_rows += att.rows()
            if out:
                parts = [(label, att.parts[key]) for key, label in study.FACTORS] + [
                    (study.RESIDUAL, att.residual)
                ]
                title = f"attribution of ln(EDP ratio), {table}, {study_model.upper()}@{study_res}"
                written += compare_plots.write(
                    compare_plots.attribution_figure(parts, att.log_ratio, title),
                    out / f"attribution_{table}",
                )
        if out:
            (out / "attribution.csv").write_text(_rows_csv(att_rows, list(att_rows[0])))
            written.append(out / "attribution.csv")
    if args.sensitivity:
        sens_rows, corners = [], []
        for table in tables:
            base, entries = study.sensitivity(table, study_model, study_res, runner, f)
            corner = study.favourable_corner(table, study_model, study_res, entries, runner, f)
            corners.append(corner)
            print()
            print(format_sensitivity(table, base, entries))
            print(
                f"  every parameter at its favourable end at once: "
                f"EDP saving {corner['edp_saving'] * 100:.1f} %"
                f" ({corner['choices']})"
            )
            sens_rows += entries
            if out:
                title = (
                    f"one-at-a-time sensitivity of the EDP saving, {table}, {study_model.upper()}@{study_res}"
                )
                written += compare_plots.write(
                    compare_plots.tornado_figure(entries, base, title), out / f"tornado_{table}"
                )
        if out:
            (out / "sensitivity.csv").write_text(_rows_csv(sens_rows, list(sens_rows[0])))
            (out / "favourable_corner.csv").write_text(_rows_csv(corners, list(corners[0])))
            written += [out / "sensitivity.csv", out / "favourable_corner.csv"]
    for path in written:
        print(f"wrote {path}")
    if not args.no_progress:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in runner.timings.items())
        print(f"wall time: {parts}; total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return EXIT_OK
