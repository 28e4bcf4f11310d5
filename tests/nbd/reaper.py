#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""reaper.py OUT PATH... -- CMD...: become a child subreaper, run CMD (which
daemonizes), and write to OUT, one line each:
  "exists PATH 0|1"   for each PATH, the moment CMD returned
  "parent RC"         CMD's exit status
  "reaped PID RC"     each orphan (the daemon) as it exits; RC is its exit
                      status, or 128+N when signal N killed it
then "done" once no child is left.  So a test sees a daemon's exit status."""
import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36
out_path = sys.argv[1]
sep = sys.argv.index("--")
paths, cmd = sys.argv[2:sep], sys.argv[sep + 1:]
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("reaper: PR_SET_CHILD_SUBREAPER failed")
out = open(out_path, "a", buffering=1)
rc = subprocess.call(cmd)
for p in paths:
    out.write("exists %s %d\n" % (p, os.path.exists(p)))
out.write("parent %d\n" % rc)
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    code = os.waitstatus_to_exitcode(status)
    out.write("reaped %d %d\n" % (pid, code if code >= 0 else 128 - code))
out.write("done\n")
