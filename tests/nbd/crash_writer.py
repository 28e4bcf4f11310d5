#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write numbered 64 KiB records at pseudo-random places, FLUSH every few
writes, and append to LOG (synced) each record number that a completed
FLUSH made durable.  Runs until the server goes away."""
import os
import random
import sys

import nbd

uri, log_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rec = 16 * 1024
h = nbd.NBD()
h.connect_uri(uri)
slots = h.get_size() // rec
rng = random.Random(seed)
order = list(range(slots))
rng.shuffle(order)
log = open(log_path, "a")
done = 0
try:
    for n, slot in enumerate(order):
        h.pwrite(bytes([n % 251 + 1]) * 8 + n.to_bytes(8, "big") + bytes([n % 251 + 1]) * (rec - 16),
                 slot * rec)
        if n % 7 == 6:
            h.flush()
            done = n + 1
            log.write("%d\n" % done)
            log.flush()
            os.fsync(log.fileno())
except nbd.Error:
    pass
