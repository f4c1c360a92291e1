#!/usr/bin/env python3
"""memlink-driver-python-shm: the pyshm transport (pyshm.py) as a conformance
driver, speaking the memlink driver protocol 2 (conformance/DRIVER.md) on
stdin and stdout: one JSON request per line in, one JSON answer per line out.

Copy this folder, replace pyshm with your transport, keep the shape: one
handler per op, each turning your transport's errors into D-ERRORS names.
Run it with: memlink-conformance --driver "python3 path/to/driver.py"
"""
import json
import sys

import pyshm

VERSION = "1.0"
CAPABILITIES = ["priorities", "daemon_writes", "write_blocking", "wait", "peek", "sequences",
                "backpressure", "crash_recovery", "cleanup", "reset"]


class Driver:
    def __init__(self):
        self.endpoint = None  # a pyshm.Daemon after create, a pyshm.Client after connect

    def handle(self, req):
        op = req.get("op")
        handler = getattr(self, "op_" + str(op), None)
        if handler is None:
            raise pyshm.Error("Unsupported", f"this driver has no op '{op}'")
        if op not in ("hello", "create", "connect", "cleanup", "reset") and self.endpoint is None:
            raise pyshm.Error("InvalidState", f"'{op}' before create or connect")
        return handler(req) or {}

    # D-HELLO, D-LIMITS
    def op_hello(self, req):
        if req.get("protocol") != 2:
            raise pyshm.Error("ProtocolMismatch", f"this driver speaks protocol 2, not {req.get('protocol')}")
        return {"protocol": 2, "name": "python-shm", "version": VERSION, "capabilities": CAPABILITIES,
                "limits": {"segment_size": {"min": pyshm.MIN_SEGMENT, "max": pyshm.MAX_SEGMENT},
                           "slot_size": {"min": pyshm.MIN_SLOT, "max": pyshm.MAX_SLOT}}}

    def op_create(self, req):
        if self.endpoint is not None:
            raise pyshm.Error("InvalidState", "this process already serves an endpoint")
        d = pyshm.Daemon.create(req["segment"], int(req["segment_size"]), int(req["slot_size"]),
                                int(req["protocol_version"]))
        self.endpoint = d
        return {"started": d.started, "epoch": d.epoch(), "capacity": d.seg.capacity, "slot_size": d.seg.slot_size}

    def op_connect(self, req):
        if self.endpoint is not None:
            raise pyshm.Error("InvalidState", "this process already serves an endpoint")
        self.endpoint = pyshm.Client.connect(req["segment"], int(req["protocol_version"]))

    def op_disconnect(self, req):
        if not isinstance(self.endpoint, pyshm.Client):
            raise pyshm.Error("InvalidState", "only a client disconnects")
        self.op_reset(req)

    # D-RESET: the endpoint ends as the process's exit would end it.
    def op_reset(self, req):
        if self.endpoint is not None:
            self.endpoint.close()
        self.endpoint = None

    def op_cleanup(self, req):
        pyshm.cleanup(req["segment"])

    @staticmethod
    def priority(req):
        p = req.get("priority")
        if p not in (0, 1, 2):
            raise pyshm.Error("InvalidArgument", f"priority must be 0, 1 or 2, not {p}")
        return p

    @staticmethod
    def data(req):
        try:
            return bytes.fromhex(req.get("data", ""))
        except ValueError:
            raise pyshm.Error("InvalidArgument", "data is not hex")

    def op_write(self, req):
        return {"sequence": self.endpoint.write(self.priority(req), self.data(req))}

    def op_write_blocking(self, req):
        seq = self.endpoint.write_blocking(self.priority(req), self.data(req), req["timeout_ms"] / 1000)
        return {"sequence": seq}

    def op_read(self, req):
        p, seq, data = self.endpoint.read()
        return {"priority": p, "sequence": seq, "data": data.hex()}

    def op_peek(self, req):
        p, seq, data = self.endpoint.read(consume=False)
        return {"priority": p, "sequence": seq, "length": len(data)}

    def op_wait(self, req):
        self.endpoint.wait(req["timeout_ms"] / 1000)

    def op_shutdown(self, req):
        if not isinstance(self.endpoint, pyshm.Daemon):
            raise pyshm.Error("InvalidState", "only the daemon shuts down")
        self.endpoint.shutdown()

    def op_set_backpressure(self, req):
        if not isinstance(self.endpoint, pyshm.Daemon):
            raise pyshm.Error("InvalidState", "only the daemon sets backpressure")
        self.endpoint.set_backpressure(int(req["permille"]))


def answer(req_id, body):
    sys.stdout.write(json.dumps(dict(body, id=req_id)) + "\n")
    sys.stdout.flush()


def main():
    if len(sys.argv) > 1:
        if sys.argv[1] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if sys.argv[1] in ("-V", "--version"):
            print(f"memlink-driver-python-shm {VERSION} (driver protocol 2)")
            return 0
        print(f"memlink-driver-python-shm: unknown argument '{sys.argv[1]}' (see --help)", file=sys.stderr)
        return 2
    driver = Driver()
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError as e:
            answer(-1, {"ok": False, "error": "InvalidArgument", "detail": f"not JSON: {e}"})
            continue
        req_id = req.get("id", -1) if isinstance(req, dict) else -1
        try:
            answer(req_id, dict(driver.handle(req), ok=True))
        except pyshm.Error as e:
            answer(req_id, {"ok": False, "error": e.code, "detail": e.detail})
        except (KeyError, TypeError, ValueError) as e:
            answer(req_id, {"ok": False, "error": "InvalidArgument", "detail": f"malformed request: {e!r}"})
        except OSError as e:
            answer(req_id, {"ok": False, "error": "IoError", "detail": str(e)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
