"""Write the outputs of a stored run as unlabelled validation records (YAML) for labelling.

    .venv/bin/python scripts/export_outputs.py --db sqlite:///results/sandbox.db > new.yaml

Each record gets the scenario, variant, output and tool calls, and an empty `expect` that a
person fills in by reading the output against the scenario's ground truth; the detectors'
own verdicts are deliberately left out so that they cannot leak into the labels.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml
from sqlmodel import Session, col, select

from sandbox.store import open_store
from sandbox.store.tables import RunRow, ScenarioRow, ToolCallRow, TrialRow


class _Literal(str):
    """A string dumped in YAML's block style."""


def _literal(dumper: yaml.Dumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--run", help="Run id (default: the latest).")
    parser.add_argument("--source", default="embedded", help="Value of each record's `source`.")
    args = parser.parse_args()
    yaml.add_representer(_Literal, _literal)
    store = open_store(args.db)
    with Session(store.engine) as session:
        run_id = (
            args.run
            or session.exec(select(RunRow.id).order_by(col(RunRow.updated_at).desc())).first()
        )
        rows = session.exec(
            select(TrialRow, ScenarioRow)
            .join(ScenarioRow, col(TrialRow.scenario_id) == col(ScenarioRow.id))
            .where(TrialRow.run_id == run_id, TrialRow.status == "ok")
            .order_by(col(ScenarioRow.scenario_id), col(TrialRow.variant))
        ).all()
        records = []
        for trial, scenario in rows:
            calls = session.exec(
                select(ToolCallRow)
                .where(ToolCallRow.trial_id == trial.id)
                .order_by(col(ToolCallRow.position))
            ).all()
            record: dict[str, object] = {
                "id": f"{args.source}-{scenario.scenario_id}-{trial.variant}-r{trial.repeat}",
                "scenario": scenario.scenario_id,
                "variant": trial.variant,
                "source": args.source,
                "output": _Literal(trial.output.replace("\r\n", "\n")),
            }
            if calls:
                record["tool_calls"] = [
                    {"name": c.name, "arguments": json.loads(c.arguments or "{}")} for c in calls
                ]
            record["expect"] = {}
            records.append(record)
    yaml.dump(records, sys.stdout, allow_unicode=True, sort_keys=False, width=100)


if __name__ == "__main__":
    main()
