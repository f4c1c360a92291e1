"""pyshm: a small shared-memory message transport in pure Python (the
standard library only), with a daemon and clients, three priorities in each
direction, and a segment that outlives its processes.

It is the transport behind the python-shm conformance driver (driver.py),
and is meant to be read: copy the driver, replace this module with your own
transport, and keep the driver's shape.

Layout of a segment (a file; a bare name is /dev/shm/<name>), little-endian:

    0     header, 4096 bytes:
          0 magic b"PYSHM1\\0\\0"   8 protocol_version u32   12 slot_size u32
          16 segment_size u64       24 capacity[3] u32 (per priority)
          36 flags u32 (bit 0: shut down)   40 backpressure u32   44 epoch u32
    4096  six rings, c2d critical, high, low, then d2c the same:
          head u64, tail u64, then `capacity` slots of
          [length u32, 0 u32, sequence u64, payload slot_size bytes]

Every ring operation holds an exclusive flock on <segment>.mutex, so the
header and rings are read and written by one process at a time; a process
killed while holding it loses the lock with its life (the kernel drops it).
A write stores its slot, then head + 1; a read copies, then tail + 1: a
process killed between the two steps publishes or consumes nothing. The
daemon holds an exclusive flock on <segment>.lock while it lives: a second
daemon is refused, a client knows the daemon is gone when it can take a
shared lock there, and a new daemon takes a dead one's segment over with
every message in it.
"""
import errno
import fcntl
import mmap
import os
import struct
import time

MAGIC = b"PYSHM1\0\0"
HEADER = 4096
RING_HEADER = 16
SLOT_HEADER = 16
MIN_SEGMENT, MAX_SEGMENT = 8192, 64 << 20
MIN_SLOT, MAX_SLOT = 1, 4096
FLAG_SHUTDOWN = 1
C2D, D2C = 0, 1


class Error(Exception):
    """A failure, with the name the driver protocol gives it (D-ERRORS)."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code, self.detail = code, detail


def path_of(name):
    return name if "/" in name else "/dev/shm/" + name


def capacities(segment_size, slot_size):
    """Slots per priority in each direction: a fifth critical, half high, the rest low."""
    stride = SLOT_HEADER + slot_size
    n = (segment_size - HEADER - 6 * RING_HEADER) // (2 * stride)
    critical = max(1, (n + 4) // 5)
    high = max(1, (n + 1) // 2)
    low = max(1, n - critical - high)
    if n < 3 or HEADER + 6 * RING_HEADER + 2 * (critical + high + low) * stride > segment_size:
        return None
    return [critical, high, low]


class Segment:
    """A mapped segment and its mutex."""

    def __init__(self, path, fd, size):
        self.path, self.fd = path, fd
        self.map = mmap.mmap(fd, size)
        self.mutex = os.open(path + ".mutex", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.slot_size = self.u32(12)
        self.capacity = list(struct.unpack_from("<3I", self.map, 24))

    def close(self):
        self.map.close()
        os.close(self.mutex)
        os.close(self.fd)

    def u32(self, at):
        return struct.unpack_from("<I", self.map, at)[0]

    def u64(self, at):
        return struct.unpack_from("<Q", self.map, at)[0]

    def set_u32(self, at, v):
        struct.pack_into("<I", self.map, at, v)

    def set_u64(self, at, v):
        struct.pack_into("<Q", self.map, at, v)

    def __enter__(self):
        fcntl.flock(self.mutex, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.mutex, fcntl.LOCK_UN)

    def ring(self, direction, priority):
        at = HEADER
        for d in range(2):
            for p in range(3):
                if (d, p) == (direction, priority):
                    return at
                at += RING_HEADER + self.capacity[p] * (SLOT_HEADER + self.slot_size)
        raise ValueError("no such ring")

    def shut_down(self):
        return self.u32(36) & FLAG_SHUTDOWN != 0

    # Under the mutex only:
    def push(self, direction, priority, data):
        r = self.ring(direction, priority)
        head, tail, cap = self.u64(r), self.u64(r + 8), self.capacity[priority]
        if head - tail >= cap:
            raise Error("Full", f"ring {direction}/{priority} holds {cap} messages")
        slot = r + RING_HEADER + (head % cap) * (SLOT_HEADER + self.slot_size)
        struct.pack_into("<IIQ", self.map, slot, len(data), 0, head)
        self.map[slot + SLOT_HEADER:slot + SLOT_HEADER + len(data)] = data
        self.set_u64(r, head + 1)  # published
        return head

    def front(self, direction):
        """The ring a read takes from (highest priority first), or None."""
        for p in range(3):
            r = self.ring(direction, p)
            if self.u64(r) > self.u64(r + 8):
                return p
        return None

    def peek(self, direction, consume):
        p = self.front(direction)
        if p is None:
            raise Error("Empty", "no message")
        r = self.ring(direction, p)
        tail, cap = self.u64(r + 8), self.capacity[p]
        slot = r + RING_HEADER + (tail % cap) * (SLOT_HEADER + self.slot_size)
        length, _, seq = struct.unpack_from("<IIQ", self.map, slot)
        if length > self.slot_size:
            raise Error("CorruptSegment", f"ring {direction}/{p} slot {tail % cap}: length {length}")
        data = bytes(self.map[slot + SLOT_HEADER:slot + SLOT_HEADER + length])
        if consume:
            self.set_u64(r + 8, tail + 1)
        return p, seq, data


def open_segment(path):
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise Error("NotFound", f"no segment at {path}")
        raise Error("IoError", f"cannot open {path}: {e.strerror}")
    size = os.fstat(fd).st_size
    if size < HEADER or size > MAX_SEGMENT:
        os.close(fd)
        raise Error("CorruptSegment", f"{path} has {size} bytes")
    seg = Segment(path, fd, size)
    if bytes(seg.map[0:8]) != MAGIC or seg.u64(16) != size or capacities(size, seg.slot_size) != seg.capacity:
        seg.close()
        raise Error("CorruptSegment", f"{path} is not a pyshm segment of its size")
    return seg


# This transport has no futex: a waiter polls. It sleeps half a millisecond
# first (a message that is about to come is seen soon) and twice as long
# after each empty look, up to 4 ms, so an idle wait costs about 250 looks a
# second (a few ms of CPU), not 2,000 (T-WAIT: an idle waiter sleeps).
FIRST_PAUSE, LONGEST_PAUSE = 0.0005, 0.004


def back_off(pause):
    """Sleeps `pause` seconds; returns the next pause."""
    time.sleep(pause)
    return min(pause * 2, LONGEST_PAUSE)


def daemon_alive(path):
    """True while some process holds the daemon's lock."""
    try:
        fd = os.open(path + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


class Endpoint:
    """What a daemon and a client share: a segment, an inbound and an outbound direction."""

    def __init__(self, seg, inbound):
        self.seg, self.inbound = seg, inbound

    def close(self):
        self.seg.close()

    def peer_gone(self):
        raise NotImplementedError

    def write(self, priority, data):
        if len(data) > self.seg.slot_size:
            raise Error("MessageTooLarge", f"{len(data)} bytes, slots hold {self.seg.slot_size}")
        with self.seg:
            if self.seg.shut_down():
                raise Error("Disconnected", "the daemon shut down")
            return self.seg.push(1 - self.inbound, priority, data)

    def write_blocking(self, priority, data, timeout):
        deadline, pause = time.monotonic() + timeout, FIRST_PAUSE
        while True:
            try:
                return self.write(priority, data)
            except Error as e:
                if e.code != "Full":
                    raise
            if self.peer_gone():
                raise Error("Disconnected", "the daemon is gone")
            if time.monotonic() >= deadline:
                raise Error("Timeout", "the ring stayed full")
            pause = back_off(pause)

    def read(self, consume=True):
        with self.seg:
            return self.seg.peek(self.inbound, consume)

    def wait(self, timeout):
        deadline, pause = time.monotonic() + timeout, FIRST_PAUSE
        while True:
            with self.seg:
                if self.seg.front(self.inbound) is not None:
                    return
            if self.peer_gone():
                raise Error("Disconnected", "the daemon is gone")
            if time.monotonic() >= deadline:
                raise Error("Timeout", "no message")
            pause = back_off(pause)


class Daemon(Endpoint):
    def __init__(self, seg, lock_fd, started):
        super().__init__(seg, C2D)
        self.lock_fd, self.started = lock_fd, started

    @staticmethod
    def create(name, segment_size, slot_size, protocol_version):
        path = path_of(name)
        if not MIN_SEGMENT <= segment_size <= MAX_SEGMENT or not MIN_SLOT <= slot_size <= MAX_SLOT:
            raise Error("InvalidArgument", f"segment {segment_size} bytes, slot {slot_size}: out of range")
        caps = capacities(segment_size, slot_size)
        if caps is None:
            raise Error("InvalidArgument", f"a {segment_size}-byte segment holds too few {slot_size}-byte slots")
        lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            raise Error("AlreadyExists", f"a daemon serves {path}")
        try:
            seg, started = Daemon._take_over(path)
        except Error as e:
            if e.code != "NotFound":
                os.close(lock)
                raise
            seg, started = Daemon._fresh(path, segment_size, slot_size, caps, protocol_version), "fresh"
        return Daemon(seg, lock, started)

    @staticmethod
    def _fresh(path, size, slot_size, caps, protocol_version):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.ftruncate(fd, size)
        header = MAGIC + struct.pack("<IIQ3IIII", protocol_version, slot_size, size, *caps, 0, 0, 1)
        os.pwrite(fd, header, 0)
        return Segment(path, fd, size)

    @staticmethod
    def _take_over(path):
        seg = open_segment(path)
        with seg:
            seg.set_u32(44, seg.u32(44) + 1)  # epoch
            seg.set_u32(36, seg.u32(36) & ~FLAG_SHUTDOWN)
        return seg, "takeover"

    def epoch(self):
        return self.seg.u32(44)

    def peer_gone(self):
        return False  # clients come and go; a daemon waits for them

    def shutdown(self):
        with self.seg:
            self.seg.set_u32(36, self.seg.u32(36) | FLAG_SHUTDOWN)
        fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def set_backpressure(self, permille):
        if not 0 <= permille <= 1000:
            raise Error("InvalidArgument", f"backpressure is 0..1000, not {permille}")
        with self.seg:
            self.seg.set_u32(40, permille)

    def close(self):
        super().close()
        os.close(self.lock_fd)


class Client(Endpoint):
    def __init__(self, seg, path):
        super().__init__(seg, D2C)
        self.path = path

    @staticmethod
    def connect(name, protocol_version):
        path = path_of(name)
        seg = open_segment(path)
        try:
            if seg.u32(8) != protocol_version:
                raise Error("ProtocolMismatch", f"the segment speaks {seg.u32(8)}, this client {protocol_version}")
            if seg.shut_down() or not daemon_alive(path):
                raise Error("Disconnected", "no daemon serves this segment")
        except Error:
            seg.close()
            raise
        return Client(seg, path)

    def peer_gone(self):
        return self.seg.shut_down() or not daemon_alive(self.path)


def cleanup(name):
    """Removes what a daemon that is gone left at `name`."""
    path = path_of(name)
    if not any(os.path.lexists(path + s) for s in ("", ".lock", ".mutex")):
        raise Error("NotFound", f"nothing at {path}")
    if daemon_alive(path):
        raise Error("AlreadyExists", f"a daemon serves {path}")
    if os.path.lexists(path):
        try:
            seg = open_segment(path)
            seg.close()
        except Error as e:
            if e.code == "CorruptSegment":
                raise Error("InvalidArgument", f"{path} is not a pyshm segment: left in place")
            raise
    for s in ("", ".lock", ".mutex"):
        try:
            os.unlink(path + s)
        except FileNotFoundError:
            pass
