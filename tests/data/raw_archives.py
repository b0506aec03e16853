"""Hand-made raw files in the exact layout of the upstream files TFDS's builders download.

Each writer puts, in a directory, the files one TFDS dataset's builder asks for, named as
`prepare.raw_file_name` names them, with the members, field names and formats the builder reads
(`tensorflow_datasets/text/{super_glue,glue,definite_pronoun_resolution}.py`): SuperGLUE's zips
hold `<Task>/{train,val,test}.jsonl` (the diagnostics `<AX-x>/<AX-x>.jsonl`), GLUE's SST-2.zip
holds `SST-2/{train,dev,test}.tsv`, MRPC is three plain files (the training file starts with a
UTF-8 BOM, which the builder skips), DPR two text files of four lines plus a blank per example.
A few examples per split; `EXPECTED[dataset]` is one split's values of one text field, to be
read back.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Callable, Mapping, Sequence

Rows = Sequence[Mapping]


def _zip_jsonl(path: str, top: str, files: Mapping[str, Rows]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{top}/", "")
        for name, rows in files.items():
            archive.writestr(f"{top}/{name}", "".join(json.dumps(r) + "\n" for r in rows))


def _splits(make: Callable[[int, bool], dict], n: int = 4) -> dict[str, list[dict]]:
    """train/val/test rows; test rows are unlabeled, as upstream."""
    return {"train.jsonl": [make(i, True) for i in range(n)],
            "val.jsonl": [make(i, True) for i in range(n)],
            "test.jsonl": [make(i, False) for i in range(n)]}


def _labeled(row: dict, labeled: bool, label) -> dict:
    return {**row, "label": label} if labeled else row


def rte(raw_dir: str) -> None:
    _zip_jsonl(os.path.join(raw_dir, "RTE.zip"), "RTE", _splits(lambda i, lab: _labeled(
        {"premise": f"RTE premise {i}: a cat sat on the mat.",
         "hypothesis": f"RTE hypothesis {i}.", "idx": i}, lab,
        ["entailment", "not_entailment"][i % 2])))


def boolq(raw_dir: str) -> None:
    _zip_jsonl(os.path.join(raw_dir, "BoolQ.zip"), "BoolQ", _splits(lambda i, lab: _labeled(
        {"question": f"is boolq question {i} true", "passage": f"BoolQ passage {i}.",
         "idx": i}, lab, i % 2 == 0)))


def cb(raw_dir: str) -> None:
    _zip_jsonl(os.path.join(raw_dir, "CB.zip"), "CB", _splits(lambda i, lab: _labeled(
        {"premise": f"CB premise {i}.", "hypothesis": f"CB hypothesis {i}.", "idx": i}, lab,
        ["entailment", "contradiction", "neutral"][i % 3])))


def copa(raw_dir: str) -> None:
    _zip_jsonl(os.path.join(raw_dir, "COPA.zip"), "COPA", _splits(lambda i, lab: _labeled(
        {"premise": f"COPA premise {i}.", "choice1": f"First choice {i}.",
         "choice2": f"Second choice {i}.", "question": ["cause", "effect"][i % 2], "idx": i},
        lab, i % 2)))


def wic(raw_dir: str) -> None:
    _zip_jsonl(os.path.join(raw_dir, "WiC.zip"), "WiC", _splits(lambda i, lab: _labeled(
        {"word": "place", "sentence1": f"Do you want to come over to my place {i}?",
         "sentence2": "A political system with no place for the less prominent groups.",
         "idx": i, "start1": 31, "start2": 27, "end1": 36, "end2": 32, "version": 1.1}, lab,
        i % 2 == 1)))


def multirc(raw_dir: str) -> None:
    def make(i: int, labeled: bool) -> dict:
        answers = [{"text": f"Answer {i}.{a}", "idx": a, **({"label": a % 2} if labeled else {})}
                   for a in range(2)]
        return {"idx": i, "version": 1.1, "passage": {
            "text": f"MultiRC paragraph {i}.",
            "questions": [{"question": f"MultiRC question {i}?", "answers": answers, "idx": 0}]}}
    _zip_jsonl(os.path.join(raw_dir, "MultiRC.zip"), "MultiRC", _splits(make))


def record(raw_dir: str) -> None:
    def make(i: int, labeled: bool) -> dict:
        text = f"Paris and Berlin met in passage {i}.\n@highlight\nParis won"
        qa = {"query": "@placeholder won the match", "idx": i}
        if labeled:  # ends are inclusive upstream
            qa["answers"] = [{"start": 0, "end": 4, "text": "Paris"}]
        return {"source": "Daily mail", "idx": i, "qas": [qa], "passage": {
            "text": text, "entities": [{"start": 0, "end": 4}, {"start": 10, "end": 15}]}}
    _zip_jsonl(os.path.join(raw_dir, "ReCoRD.zip"), "ReCoRD", _splits(make))


def wsc(raw_dir: str) -> None:
    def make(i: int, labeled: bool) -> dict:
        return _labeled({"text": f"Mark told Pete {i} lies about himself . He was wrong .",
                         "target": {"span1_index": 0, "span1_text": "Mark", "span2_index": 8,
                                    "span2_text": "He"}, "idx": i}, labeled, True)
    _zip_jsonl(os.path.join(raw_dir, "WSC.zip"), "WSC", _splits(make))


def axb(raw_dir: str) -> None:
    _zip_jsonl(os.path.join(raw_dir, "AX-b.zip"), "AX-b", {"AX-b.jsonl": [
        {"sentence1": f"AX-b sentence one {i}.", "sentence2": f"AX-b sentence two {i}.",
         "label": "entailment", "idx": i, "logic": ""} for i in range(3)]})


def axg(raw_dir: str) -> None:
    _zip_jsonl(os.path.join(raw_dir, "AX-g.zip"), "AX-g", {"AX-g.jsonl": [
        {"premise": f"AX-g premise {i}.", "hypothesis": f"AX-g hypothesis {i}.",
         "label": "not_entailment", "idx": i, "pair_id": i} for i in range(3)]})


def sst2(raw_dir: str) -> None:
    rows = "".join(f"sst2 sentence {i} , fine \t{i % 2}\n" for i in range(4))
    with zipfile.ZipFile(os.path.join(raw_dir, "SST-2.zip"), "w") as archive:
        archive.writestr("SST-2/", "")
        archive.writestr("SST-2/train.tsv", "sentence\tlabel\n" + rows)
        archive.writestr("SST-2/dev.tsv", "sentence\tlabel\n" + rows)
        archive.writestr("SST-2/test.tsv", "index\tsentence\n" + "".join(
            f"{i}\tsst2 test sentence {i} .\n" for i in range(3)))


MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


def mrpc(raw_dir: str) -> None:
    # Pairs 1000+i; those with even i are the dev set (listed in the dev ids file).
    train = "".join(f"{i % 2}\t{1000 + i}\t{2000 + i}\tMRPC first {i} .\tMRPC second {i} .\n"
                    for i in range(6))
    with open(os.path.join(raw_dir, "msr_paraphrase_train.txt"), "w", encoding="utf-8-sig") as f:
        f.write(MRPC_HEADER + train)
    with open(os.path.join(raw_dir, "msr_paraphrase_test.txt"), "w", encoding="utf-8-sig") as f:
        f.write(MRPC_HEADER + "".join(f"1\t{3000 + i}\t{4000 + i}\tMRPC test {i} .\tOther {i} .\n"
                                      for i in range(3)))
    with open(os.path.join(raw_dir, "data_mrpc_dev_ids.tsv"), "w") as f:
        f.write("".join(f"{1000 + i}\t{2000 + i}\n" for i in range(0, 6, 2)))


def dpr(raw_dir: str) -> None:
    for split in ("train", "test"):
        with open(os.path.join(raw_dir, f"{split}.c.txt"), "w") as f:
            for i in range(4):
                f.write(f"The bee {split} {i} landed on the flower because it had pollen.\nit\n"
                        "The bee,the flower\nthe flower\n\n")


WRITERS: Mapping[str, Callable[[str], None]] = {
    "super_glue/rte:1.0.2": rte, "super_glue/boolq:1.0.2": boolq, "super_glue/cb:1.0.2": cb,
    "super_glue/copa:1.0.2": copa, "super_glue/wic:1.0.2": wic,
    "super_glue/multirc:1.0.2": multirc, "super_glue/record:1.0.2": record,
    "super_glue/wsc.fixed:1.0.2": wsc, "super_glue/axb:1.0.2": axb,
    "super_glue/axg:1.0.2": axg, "glue/sst2:2.0.0": sst2, "glue/mrpc:2.0.0": mrpc,
    "definite_pronoun_resolution:1.1.0": dpr,
}

# (split, text feature, its values in that split) as TFDS should read them back (in any order).
R4 = range(4)
EXPECTED: Mapping[str, tuple[str, str, list[str]]] = {
    "super_glue/rte:1.0.2": ("validation", "premise",
                             [f"RTE premise {i}: a cat sat on the mat." for i in R4]),
    "super_glue/boolq:1.0.2": ("validation", "question",
                               [f"is boolq question {i} true" for i in R4]),
    "super_glue/cb:1.0.2": ("test", "hypothesis", [f"CB hypothesis {i}." for i in R4]),
    "super_glue/copa:1.0.2": ("validation", "choice2", [f"Second choice {i}." for i in R4]),
    "super_glue/wic:1.0.2": ("validation", "sentence1",
                             [f"Do you want to come over to my place {i}?" for i in R4]),
    "super_glue/multirc:1.0.2": ("validation", "answer",
                                 [f"Answer {i}.{a}" for i in R4 for a in range(2)]),
    "super_glue/record:1.0.2": ("train", "passage", [
        f"Paris and Berlin met in passage {i}.\n@highlight\nParis won" for i in R4]),
    "super_glue/wsc.fixed:1.0.2": ("validation", "text", [
        f"Mark told Pete {i} lies about himself . He was wrong ." for i in R4]),
    "super_glue/axb:1.0.2": ("test", "sentence1", [f"AX-b sentence one {i}." for i in range(3)]),
    "super_glue/axg:1.0.2": ("test", "premise", [f"AX-g premise {i}." for i in range(3)]),
    "glue/sst2:2.0.0": ("validation", "sentence", [f"sst2 sentence {i} , fine " for i in R4]),
    "glue/mrpc:2.0.0": ("validation", "sentence1", [f"MRPC first {i} ." for i in (0, 2, 4)]),
    "definite_pronoun_resolution:1.1.0": ("test", "sentence", [
        f"The bee test {i} landed on the flower because it had pollen." for i in R4]),
}


def write(raw_dir: str, datasets: Sequence[str]) -> None:
    """The raw files of every TFDS dataset in `datasets`, into `raw_dir`."""
    os.makedirs(raw_dir, exist_ok=True)
    for name in datasets:
        WRITERS[name](raw_dir)
