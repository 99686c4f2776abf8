"""Simulate downloading a data set: wait a little, then write a CSV.

With --flaky the first attempt within a trine run fails, as a rate-limited
API would; trine's retries run it again. Attempts are remembered in a marker
file named after the parent process (the trine run), so each run sees the
failure once.
"""

import argparse
import csv
import os
import random
import sys
import time

from _common import work_dir

parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("--rows", type=int, default=10)
parser.add_argument("--delay", type=float, default=0.2)
parser.add_argument("--flaky", action="store_true")
args = parser.parse_args()

time.sleep(args.delay)
if args.flaky:
    marker = work_dir() / f"{args.name}.attempts.{os.getppid()}"
    attempt = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempt))
    if attempt == 1:
        print(f"GET /{args.name}: 503 Service Unavailable (attempt {attempt})", file=sys.stderr)
        sys.exit(1)
    marker.unlink()

rng = random.Random(args.name)
with open(work_dir() / f"{args.name}.csv", "w", newline="") as file:
    writer = csv.writer(file)
    writer.writerow(["id", "region", "amount"])
    for row in range(args.rows):
        writer.writerow([row, rng.choice(["north", "south", "east", "west"]), rng.randint(1, 500)])
print(f"fetched {args.rows} {args.name}")
