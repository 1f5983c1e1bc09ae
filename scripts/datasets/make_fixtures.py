#!/usr/bin/env python3
"""Write the tiny dataset fixtures that rlft's dataset readers are tested on, in the layouts
TRL and verl users have, and record what pyarrow reads back from each file.

Nothing is downloaded. The rows are small arithmetic questions written here; the layouts are
those of:

- verl: `examples/data_preprocess/gsm8k.py` (volcengine/verl) maps each GSM8K row to
  `data_source`, `prompt` (a list of chat messages), `ability`, `reward_model`
  (`{"style": "rule", "ground_truth": ...}`) and `extra_info` (`split`, `index`, `answer`,
  `question`), then writes it with `datasets.Dataset.to_parquet`, which builds an Arrow table
  and writes it with pyarrow. This script builds the same Arrow table with pyarrow directly
  (the `datasets` package only adds its schema metadata) in row groups of 2 rows, so that
  readers are exercised across row groups.
- TRL: the Hugging Face datasets layouts of TRL's dataset-formats guide: "standard"
  (`prompt` is a string) and "conversational" (`prompt` is a list of `{role, content}`
  messages), with the answer in a named column (`solution`, as in trl-lib/DeepMath-103K that
  TRL's GRPO quickstart trains on).
- conversational JSONL: one object per line with `messages` (system + user) and `answer`.

Each `<name>.parquet` gets a `<name>.expected.json`: pyarrow's own reading of the file
(`pyarrow.parquet.read_table(path).to_pylist()`) with the row group sizes and the library
versions. The Rust tests compare their reading against it. `bad_rows.parquet` is the verl
layout with a null `reward_model.ground_truth` in its fourth row (row group 1), for the
error test.

Usage (from the repository root):

    python -m venv .venv && .venv/bin/pip install -r scripts/datasets/requirements.txt
    .venv/bin/python scripts/datasets/make_fixtures.py   # writes crates/tasks/tests/fixtures/datasets

The script is deterministic: a second run writes identical bytes. CI does not run it.
"""

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# verl's instruction, appended to each question by examples/data_preprocess/gsm8k.py.
VERL_INSTRUCTION = 'Let\'s think step by step and output the final answer after "####".'

# (question, worked answer in GSM8K's style, final answer)
QUESTIONS = [
    ("Tom has 3 apples and buys 4 more. How many apples does he have?", "3 + 4 = <<3+4=7>>7\n#### 7", "7"),
    ("A box holds 6 pens. How many pens are in 2 boxes?", "6 * 2 = <<6*2=12>>12\n#### 12", "12"),
    ("Sara had 10 sweets and ate 3. How many are left?", "10 - 3 = <<10-3=7>>7\n#### 7", "7"),
    ("There are 5 rows of 5 chairs. How many chairs are there?", "5 * 5 = <<5*5=25>>25\n#### 25", "25"),
    ("Ben reads 8 pages a day. How many pages does he read in 3 days?", "8 * 3 = <<8*3=24>>24\n#### 24", "24"),
    ("A cake is cut into 12 slices and 5 are eaten. How many slices remain?", "12 - 5 = <<12-5=7>>7\n#### 7", "7"),
]

SYSTEM = "You are a careful calculator."


def verl_rows(split):
    rows = []
    for idx, (question_raw, answer_raw, solution) in enumerate(QUESTIONS):
        question = question_raw + " " + VERL_INSTRUCTION
        rows.append(
            {
                "data_source": "openai/gsm8k",
                "prompt": [{"role": "user", "content": question}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": solution},
                "extra_info": {
                    "split": split,
                    "index": idx,
                    "answer": answer_raw,
                    "question": question_raw,
                },
            }
        )
    return rows


def trl_standard_rows():
    return [{"prompt": q, "solution": s} for q, _, s in QUESTIONS]


def trl_conversational_rows():
    return [
        {"prompt": [{"content": q, "role": "user"}], "solution": s}
        for q, _, s in QUESTIONS
    ]


def write_parquet(out: Path, name: str, rows, row_group_size: int):
    path = out / f"{name}.parquet"
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, path, row_group_size=row_group_size, compression="snappy")
    meta = pq.ParquetFile(path).metadata
    expected = {
        "source": "pyarrow.parquet.read_table(path).to_pylist()",
        "pyarrow": pa.__version__,
        "python": sys.version.split()[0],
        "schema": str(table.schema),
        "row_groups": [meta.row_group(i).num_rows for i in range(meta.num_row_groups)],
        "rows": pq.read_table(path).to_pylist(),
    }
    (out / f"{name}.expected.json").write_text(
        json.dumps(expected, indent=1, ensure_ascii=False) + "\n"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/tasks/tests/fixtures/datasets")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)

    write_parquet(out, "verl_gsm8k", verl_rows("train"), row_group_size=2)
    write_parquet(out, "trl_standard", trl_standard_rows(), row_group_size=4)
    write_parquet(out, "trl_conversational", trl_conversational_rows(), row_group_size=4)

    bad = verl_rows("train")
    bad[3]["reward_model"]["ground_truth"] = None
    write_parquet(out, "bad_rows", bad, row_group_size=2)

    with open(out / "conversational.jsonl", "w") as f:
        for i, (q, _, s) in enumerate(QUESTIONS):
            line = {
                "id": f"conv-{i}",
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": q},
                ],
                "answer": s,
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
