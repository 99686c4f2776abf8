"""A slow third-party geocoder: it hangs, so its timeout stops it."""

import time

print("geocoding regions...", flush=True)
time.sleep(60)
