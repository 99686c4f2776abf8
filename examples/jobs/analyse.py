"""Aggregate the clean orders: total sales, or sales per region."""

import collections
import csv
import json
import sys
import time

from _common import work_dir

kind = sys.argv[1]
time.sleep(0.3)
with open(work_dir() / "clean.csv", newline="") as file:
    orders = list(csv.DictReader(file))
if kind == "sales":
    result: object = {"orders": len(orders), "total": sum(int(o["amount"]) for o in orders)}
else:
    totals: collections.Counter[str] = collections.Counter()
    for order in orders:
        totals[order["region"]] += int(order["amount"])
    result = dict(totals.most_common())
(work_dir() / f"{kind}.json").write_text(json.dumps(result))
print(f"{kind}: {result}")
