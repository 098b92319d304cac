#!/usr/bin/python3
"""Holds a lease on the latest version of a topic until told to stop, through libweightbus with ctypes:
lease_holder.py LIBRARY TOPIC READY_FILE STOP_FILE. The broker is found through $WEIGHTBUS_SOCKET."""
import ctypes
import os
import sys
import time

lib = ctypes.CDLL(sys.argv[1])
topic_name, ready, stop = sys.argv[2].encode(), sys.argv[3], sys.argv[4]
client, topic, snapshot = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
lib.wb_snapshot_acquire.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int64, ctypes.c_void_p]
for rc in (lib.wb_attach(None, ctypes.byref(client)),
           lib.wb_topic_open(client, topic_name, ctypes.byref(topic)),
           lib.wb_snapshot_acquire(topic, 0, 5000, ctypes.byref(snapshot))):
    if rc != 0:
        sys.exit("lease_holder: error %d" % rc)
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.02)
lib.wb_snapshot_release(snapshot)
lib.wb_detach(client)
