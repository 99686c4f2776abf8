"""Write the daily report from the analyses (--print: show it)."""

import json
import sys

from _common import work_dir

sales = json.loads((work_dir() / "sales.json").read_text())
regions = json.loads((work_dir() / "regions.json").read_text())
lines = [f"orders: {sales['orders']}, total: {sales['total']}"]
lines += [f"  {region:<6} {amount:>6}" for region, amount in regions.items()]
report = "\n".join(lines)
if "--print" in sys.argv:
    print(report)
else:
    (work_dir() / "report.txt").write_text(report + "\n")
