"""The Label Studio SDK workload of issue 3, driven only by the official client, timed per phase.

    python bench/sdk_workload.py --url http://127.0.0.1:8000 --api-key KEY [--client sdk|legacy]

Phases: create an OCR project; import 10,000 tasks in one call; import 10,000 more in batches of
1,000; list every task 100 per page; create 500 OCR annotations (rectangle + label + per-region
transcription); export JSON; delete the project. The same script runs against Label Studio
(e.g. `label-studio==1.23.2` in its own venv) for the side-by-side figures: point --url at it.
"""

import argparse
import json
import sys
import time
from contextlib import contextmanager

OCR_CONFIG = """<View>
  <Image name="image" value="$ocr"/>
  <Labels name="label" toName="image">
    <Label value="Text" background="green"/>
    <Label value="Handwriting" background="blue"/>
  </Labels>
  <Rectangle name="bbox" toName="image" strokeWidth="3"/>
  <Polygon name="poly" toName="image" strokeWidth="3"/>
  <TextArea name="transcription" toName="image" editable="true" perRegion="true" required="true"
            maxSubmissions="1" rows="5" placeholder="Recognized Text" displayMode="region-list"/>
</View>"""


def ocr_region(n: int) -> list[dict]:
    geometry = {"x": 5 + n % 50, "y": 5 + n % 40, "width": 20, "height": 4, "rotation": 0}
    common = {"id": f"r{n}", "to_name": "image", "original_width": 1240, "original_height": 1754}
    return [
        {**common, "from_name": "bbox", "type": "rectangle", "value": geometry},
        {**common, "from_name": "label", "type": "labels", "value": {**geometry, "labels": ["Text"]}},
        {**common, "from_name": "transcription", "type": "textarea", "value": {**geometry, "text": [f"line {n}"]}},
    ]


def tasks(count: int, offset: int = 0) -> list[dict]:
    return [{"ocr": f"https://example.test/scans/{offset + n:06d}.png", "page": offset + n} for n in range(count)]


class Timer:
    def __init__(self):
        self.phases: list[tuple[str, float]] = []

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.phases.append((name, elapsed))
        print(f"{name:<40} {elapsed:8.2f} s", flush=True)

    def total(self) -> float:
        return sum(seconds for _, seconds in self.phases)


def run_sdk(args, timer: Timer) -> None:
    from label_studio_sdk import LabelStudio

    ls = LabelStudio(base_url=args.url, api_key=args.api_key, timeout=600)
    ls.versions.get()  # warm-up (untimed): connections, token exchange, server-side caches
    with timer.phase("create OCR project"):
        project = ls.projects.create(title="SDK workload", label_config=OCR_CONFIG)
    try:
        with timer.phase(f"import {args.tasks} tasks in one call"):
            ls.projects.import_tasks(id=project.id, request=tasks(args.tasks), return_task_ids=True)
        with timer.phase(f"import {args.tasks} tasks in batches of {args.batch}"):
            for start in range(0, args.tasks, args.batch):
                ls.projects.import_tasks(id=project.id, request=tasks(args.batch, args.tasks + start))
        with timer.phase("list all tasks, 100 per page"):
            task_ids = [task.id for task in ls.tasks.list(project=project.id, page_size=100)]
        assert len(task_ids) == 2 * args.tasks, f"listed {len(task_ids)} tasks"
        with timer.phase(f"create {args.annotations} OCR annotations"):
            for n, task_id in enumerate(task_ids[: args.annotations]):
                ls.annotations.create(id=task_id, result=ocr_region(n), lead_time=1.0)
        with timer.phase("export JSON"):
            exported = ls.projects.exports.as_json(project.id, timeout=600)
        annotated = sum(1 for task in exported if task.get("annotations"))
        assert annotated >= args.annotations, f"export holds {annotated} annotated tasks"
    finally:
        with timer.phase("delete project"):
            ls.projects.delete(id=project.id)


def run_legacy(args, timer: Timer) -> None:
    from label_studio_sdk._legacy import Client

    client = Client(url=args.url, api_key=args.api_key)
    client.get_projects()  # warm-up (untimed)
    with timer.phase("create OCR project"):
        project = client.start_project(title="Legacy workload", label_config=OCR_CONFIG)
    try:
        with timer.phase(f"import {args.tasks} tasks in one call"):
            project.import_tasks(tasks(args.tasks))
        with timer.phase(f"import {args.tasks} tasks in batches of {args.batch}"):
            for start in range(0, args.tasks, args.batch):
                project.import_tasks(tasks(args.batch, args.tasks + start))
        with timer.phase("list all tasks, 100 per page"):
            task_ids, page = [], 1
            while True:
                result = project.get_paginated_tasks(page=page, page_size=100)
                if not result or result.get("end_pagination") or not result.get("tasks"):
                    break
                task_ids += [task["id"] for task in result["tasks"]]
                page += 1
        assert len(task_ids) == 2 * args.tasks, f"listed {len(task_ids)} tasks"
        with timer.phase(f"create {args.annotations} OCR annotations"):
            for n, task_id in enumerate(task_ids[: args.annotations]):
                project.create_annotation(task_id, result=ocr_region(n), lead_time=1.0)
        with timer.phase("export JSON"):
            exported = project.export_tasks(export_type="JSON")
        annotated = sum(1 for task in exported if task.get("annotations"))
        assert annotated >= args.annotations, f"export holds {annotated} annotated tasks"
    finally:
        with timer.phase("delete project"):
            client.delete_project(project.id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--client", choices=["sdk", "legacy"], default="sdk")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--annotations", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()

    timer = Timer()
    print(f"{args.client} client against {args.url}")
    (run_sdk if args.client == "sdk" else run_legacy)(args, timer)
    print(f"{'total':<40} {timer.total():8.2f} s")
    if args.json:
        print(json.dumps({"client": args.client, "url": args.url, "phases": dict(timer.phases),
                          "total": timer.total()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
