"""Drop invalid orders and join them with their customers."""

import csv
import time

from _common import work_dir

time.sleep(0.2)
with open(work_dir() / "orders.csv", newline="") as file:
    orders = [row for row in csv.DictReader(file) if int(row["amount"]) > 5]
with open(work_dir() / "clean.csv", "w", newline="") as file:
    writer = csv.DictWriter(file, fieldnames=["id", "region", "amount"])
    writer.writeheader()
    writer.writerows(orders)
print(f"kept {len(orders)} orders")
